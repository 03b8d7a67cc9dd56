"""A daemon's ``status`` as Prometheus exposition text (``atlasd metrics``, ``/metrics``).

The daemon keeps plain counters and answers them in ``status``; this module,
the only one that imports ``prometheus_client``, turns one status answer into
metric families and renders them, so a scrape costs one ``status`` call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import get_args

from msgspec import UNSET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from atlasd.reports import CountersSnapshot
from atlasd.wire import CompactionStatus, StatusReport, SyncStateName, SyncStatus

__all__ = ["CONTENT_TYPE", "SYNC_STATES", "exposition"]

#: The media type of :func:`exposition`'s text (Prometheus' text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Every value ``sync.state`` takes; one gauge per state, 1 for the current one.
SYNC_STATES: tuple[SyncStateName, ...] = get_args(SyncStateName)


def exposition(status: StatusReport, now_ms: int | None = None) -> bytes:
    """The Prometheus text format (version 0.0.4) of one ``status`` answer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status, now_ms))
    return generate_latest(registry)


class _StatusCollector(Collector):
    def __init__(self, status: StatusReport, now_ms: int | None) -> None:
        self._status = status
        self._now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms

    def collect(self) -> Iterator[Metric]:
        status = self._status
        info = GaugeMetricFamily(
            "atlasd_info", "The daemon's version and origin.", labels=["version", "origin"]
        )
        info.add_metric([status.version, status.origin], 1)
        yield info
        yield _gauge("atlasd_events", "Events in the log.", status.events)
        yield _gauge("atlasd_last_seq", "Seq of the newest event.", status.last_seq)
        yield _gauge("atlasd_db_bytes", "Database file plus its WAL.", status.db_bytes)
        yield _gauge("atlasd_uptime_seconds", "Seconds since start.", status.uptime_s)
        yield _gauge("atlasd_connections", "Open socket connections.", status.connections)
        yield from self._appends(status.counters)
        yield from self._sync(status.sync)
        if status.compaction is not UNSET:
            yield from self._compaction(status.compaction)
        files = GaugeMetricFamily(
            "atlasd_spool_files", "Files in the spool directory.", labels=["state"]
        )
        files.add_metric(["waiting"], float(status.spool.waiting))
        files.add_metric(["rejected"], float(status.spool.rejected))
        yield files

    def _appends(self, counters: CountersSnapshot) -> Iterator[Metric]:
        appends = CounterMetricFamily(
            "atlasd_appends",
            "Events offered to the log since start, by outcome (appended, duplicate, or the "
            "error code that refused them).",
            labels=["outcome"],
        )
        appends.add_metric(["appended"], float(counters.appended))
        appends.add_metric(["duplicate"], float(counters.duplicates))
        for code, count in sorted(counters.refused.items()):
            appends.add_metric([code], float(count))
        yield appends
        groups = CounterMetricFamily("atlasd_groups", "Group commits since start.")
        groups.add_metric([], float(counters.groups))
        yield groups
        bounds = [float(b) for b in counters.commit_bounds]
        buckets = counters.commit_buckets or [0] * (len(bounds) + 1)
        cumulative, total = [], 0
        for bound, count in zip((*bounds, float("inf")), buckets, strict=True):
            total += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        latency = HistogramMetricFamily(
            "atlasd_commit_seconds", "Time to commit one group (events, views, fsync)."
        )
        latency.add_metric([], cumulative, counters.commit_seconds_sum)
        yield latency

    def _sync(self, sync: SyncStatus) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "atlasd_sync_state", "1 for the sync's current state.", labels=["state"]
        )
        for name in SYNC_STATES:
            state.add_metric([name], 1.0 if sync.state == name else 0.0)
        yield state
        yield _gauge("atlasd_sync_pending", "Events not yet accepted by the remote.",
                     sync.pending)  # fmt: skip
        yield _gauge("atlasd_sync_acked_seq", "Every event up to this seq is on the remote.",
                     sync.acked_seq)  # fmt: skip
        yield _gauge("atlasd_sync_remote_high_water", "The remote's high water for this origin.",
                     sync.remote_high_water)  # fmt: skip
        yield _gauge("atlasd_sync_quarantined", "Events the remote refused (quarantine).",
                     sync.rejected)  # fmt: skip
        oldest = sync.oldest_pending_ms
        age = 0.0 if oldest is None else max(0.0, (self._now_ms - oldest) / 1000)
        yield _gauge(
            "atlasd_sync_oldest_pending_seconds",
            "Age of the oldest event not yet on the remote (0 when none).",
            age,
        )

    def _compaction(self, compaction: CompactionStatus) -> Iterator[Metric]:
        at_ms = compaction.last_at_ms
        yield _gauge("atlasd_compaction_last_timestamp_seconds",
                     "When the last compaction that moved anything ended (unix time).",
                     None if at_ms is None else at_ms / 1000)  # fmt: skip
        yield _gauge("atlasd_compaction_last_events",
                     "Events the last compaction moved into archive segments.",
                     compaction.last_events)  # fmt: skip
        yield _gauge("atlasd_compaction_last_bytes_freed",
                     "Bytes the last compaction took off the database.",
                     compaction.last_bytes_freed)  # fmt: skip
        yield _gauge("atlasd_compaction_step_max_seconds",
                     "Longest compaction step on the writer since start.",
                     compaction.step_max_ms / 1000)  # fmt: skip


def _gauge(name: str, documentation: str, value: object) -> GaugeMetricFamily:
    """A gauge; absent values (a remote never reached, sync off) are not exposed as samples."""
    family = GaugeMetricFamily(name, documentation)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        family.add_metric([], float(value))
    return family
