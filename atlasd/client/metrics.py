"""A daemon's ``status`` as Prometheus exposition text (``atlasd metrics``, ``/metrics``).

The daemon keeps plain counters and answers them in ``status``; this module,
the only one that imports ``prometheus_client``, turns one status answer into
metric families and renders them, so a scrape costs one ``status`` call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["SYNC_STATES", "exposition"]

#: Every value ``sync.state`` takes; one gauge per state, 1 for the current one.
SYNC_STATES = ("disabled", "idle", "sending", "backoff", "auth_error")


def exposition(status: Mapping[str, Any], now_ms: int | None = None) -> bytes:
    """The Prometheus text format (version 0.0.4) of one ``status`` answer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status, now_ms))
    return generate_latest(registry)


class _StatusCollector(Collector):
    def __init__(self, status: Mapping[str, Any], now_ms: int | None) -> None:
        self._status = status
        self._now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms

    def collect(self) -> Iterator[Metric]:
        status = self._status
        info = GaugeMetricFamily(
            "atlasd_info", "The daemon's version and origin.", labels=["version", "origin"]
        )
        info.add_metric([str(status.get("version", "")), str(status.get("origin", ""))], 1)
        yield info
        yield _gauge("atlasd_events", "Events in the log.", status.get("events"))
        yield _gauge("atlasd_last_seq", "Seq of the newest event.", status.get("last_seq"))
        yield _gauge("atlasd_db_bytes", "Database file plus its WAL.", status.get("db_bytes"))
        yield _gauge("atlasd_uptime_seconds", "Seconds since start.", status.get("uptime_s"))
        yield _gauge("atlasd_connections", "Open socket connections.", status.get("connections"))
        yield from self._appends(status.get("counters") or {})
        yield from self._sync(status.get("sync") or {})
        yield from self._compaction(status.get("compaction") or {})
        spool = status.get("spool") or {}
        files = GaugeMetricFamily(
            "atlasd_spool_files", "Files in the spool directory.", labels=["state"]
        )
        for state in ("waiting", "rejected"):
            files.add_metric([state], float(spool.get(state) or 0))
        yield files

    def _appends(self, counters: Mapping[str, Any]) -> Iterator[Metric]:
        appends = CounterMetricFamily(
            "atlasd_appends",
            "Events offered to the log since start, by outcome (appended, duplicate, or the "
            "error code that refused them).",
            labels=["outcome"],
        )
        appends.add_metric(["appended"], float(counters.get("appended") or 0))
        appends.add_metric(["duplicate"], float(counters.get("duplicates") or 0))
        for code, count in sorted((counters.get("refused") or {}).items()):
            appends.add_metric([str(code)], float(count))
        yield appends
        groups = CounterMetricFamily("atlasd_groups", "Group commits since start.")
        groups.add_metric([], float(counters.get("groups") or 0))
        yield groups
        bounds = [float(b) for b in counters.get("commit_bounds") or ()]
        buckets = list(counters.get("commit_buckets") or [0] * (len(bounds) + 1))
        cumulative, total = [], 0
        for bound, count in zip((*bounds, float("inf")), buckets, strict=True):
            total += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        latency = HistogramMetricFamily(
            "atlasd_commit_seconds", "Time to commit one group (events, views, fsync)."
        )
        latency.add_metric([], cumulative, float(counters.get("commit_seconds_sum") or 0.0))
        yield latency

    def _sync(self, sync: Mapping[str, Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "atlasd_sync_state", "1 for the sync's current state.", labels=["state"]
        )
        for name in SYNC_STATES:
            state.add_metric([name], 1.0 if sync.get("state") == name else 0.0)
        yield state
        yield _gauge("atlasd_sync_pending", "Events not yet accepted by the remote.",
                     sync.get("pending"))  # fmt: skip
        yield _gauge("atlasd_sync_acked_seq", "Every event up to this seq is on the remote.",
                     sync.get("acked_seq"))  # fmt: skip
        yield _gauge("atlasd_sync_remote_high_water", "The remote's high water for this origin.",
                     sync.get("remote_high_water"))  # fmt: skip
        yield _gauge("atlasd_sync_quarantined", "Events the remote refused (quarantine).",
                     sync.get("rejected"))  # fmt: skip
        oldest = sync.get("oldest_pending_ms")
        age = None if oldest is None else max(0.0, (self._now_ms - int(oldest)) / 1000)
        yield _gauge("atlasd_sync_oldest_pending_seconds",
                     "Age of the oldest event not yet on the remote (0 when none).",
                     age if age is not None else 0.0)  # fmt: skip

    def _compaction(self, compaction: Mapping[str, Any]) -> Iterator[Metric]:
        at_ms = compaction.get("last_at_ms")
        yield _gauge("atlasd_compaction_last_timestamp_seconds",
                     "When the last compaction that moved anything ended (unix time).",
                     at_ms / 1000 if isinstance(at_ms, int) else None)  # fmt: skip
        yield _gauge("atlasd_compaction_last_events",
                     "Events the last compaction moved into archive segments.",
                     compaction.get("last_events"))  # fmt: skip
        yield _gauge("atlasd_compaction_last_bytes_freed",
                     "Bytes the last compaction took off the database file and WAL.",
                     compaction.get("last_bytes_freed"))  # fmt: skip
        yield _gauge("atlasd_compaction_step_max_seconds",
                     "Longest compaction step on the writer since start.",
                     (compaction.get("step_max_ms") or 0) / 1000)  # fmt: skip


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    """A gauge; absent values (a remote never reached) are not exposed as samples."""
    family = GaugeMetricFamily(name, documentation)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        family.add_metric([], float(value))
    return family
