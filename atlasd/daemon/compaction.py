"""The daemon's compaction schedule: a run every ``retention.compact_interval_s``,
and one at once when the database reaches the size cap's alert (docs/eventlog.md,
"Retention").

Each run goes through :class:`~atlasd.eventlog.autocompact.Compactor`, whose
steps share the writer with appends a few ms at a time. A run that fails is
logged and retried at the next tick; the daemon goes on serving.
"""

from __future__ import annotations

import logging
import time

import anyio

from atlasd.config import Config
from atlasd.daemon.log import log_event
from atlasd.errors import AtlasdError
from atlasd.eventlog.autocompact import Compactor
from atlasd.eventlog.capacity import cap_state
from atlasd.eventlog.datadir import db_bytes, db_path
from atlasd.eventlog.retention import CompactionRule
from atlasd.eventlog.store import EventStore

__all__ = ["compaction_rule", "run_compaction"]

log = logging.getLogger("atlasd.compaction")

_DAY_MS = 86_400_000
#: How often the database's size is compared with the cap's alert between runs.
CAP_POLL_S = 5.0


def compaction_rule(config: Config) -> CompactionRule | None:
    """The rule ``[retention]`` sets (None: retention off)."""
    retention = config.retention
    if not retention.enabled:
        return None
    days = retention.archive_after_days
    return CompactionRule(
        older_than_ms=None if days is None else days * _DAY_MS,
        past_bytes=retention.archive_past_bytes,
        synced_only=config.sync.enabled,
        segment_events=retention.segment_events,
    )


async def run_compaction(config: Config, store: EventStore, compactor: Compactor) -> None:
    """Run until cancelled: on the interval, and early when the size cap's alert is on
    (after a run at the alert that moved nothing, only on the interval again)."""
    interval = config.retention.compact_interval_s
    cap = config.max_db_bytes
    path = db_path(config.data_dir)
    next_run = time.monotonic() + min(interval, CAP_POLL_S)  # the first run soon after start
    alert_fruitless = False
    while True:
        now = time.monotonic()
        alert = cap is not None and cap_state(db_bytes(path), cap).alert
        if now >= next_run or (alert and not alert_fruitless):
            reason = "interval" if now >= next_run else "size_cap_alert"
            moved = await _run_once(compactor, reason)
            alert_fruitless = alert and not moved
            next_run = time.monotonic() + interval
        elif not alert:
            alert_fruitless = False
        await anyio.sleep(min(CAP_POLL_S, max(0.0, next_run - time.monotonic())))


async def _run_once(compactor: Compactor, reason: str) -> bool:
    """One run, logged; returns whether it moved anything."""
    started = time.monotonic()
    try:
        report = await compactor.run()
    except AtlasdError as error:
        log_event(log, logging.WARNING, "compaction_failed", reason=reason, error=error.message)
        return False
    except Exception as exc:  # a bug: keep serving, the next tick tries again
        log_event(log, logging.ERROR, "compaction_failed", exc_info=True, reason=reason, error=exc)
        return False
    if report.archived or report.finished or report.orphans_removed:
        log_event(
            log,
            logging.INFO,
            "compacted",
            reason=reason,
            events=report.archived,
            segments=report.segments,
            finished=report.finished,
            bytes_freed=report.bytes_freed,
            ms=round((time.monotonic() - started) * 1000),
        )
        if not report.shrinks:
            log_event(
                log,
                logging.WARNING,
                "compaction_no_shrink",
                hint="the database predates incremental auto-vacuum: its freed pages are"
                " reused, and `atlasd compact` run once with the daemon stopped converts it",
            )
    return report.archived > 0
