"""Typed results of client calls, decoded from the daemon's answers."""

from __future__ import annotations

from typing import Any

import msgspec

from atlasd.events import AppendResult, Event

__all__ = ["AppendOutcome", "Pong", "QueryPage", "ReadResult", "StatusReport", "SyncStatus"]


class AppendOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Where an append stands.

    ``spooled`` is true when no daemon answered and the event went to the
    spool instead: it has its ``event_id`` but no ``seq``/``version`` yet, and
    the daemon appends it (once) when it next runs. ``spool_file`` names the file.
    """

    event_id: str
    seq: int | None
    version: int | None
    duplicate: bool = False
    spooled: bool = False
    spool_file: str | None = None
    #: Why the event went to the spool (no daemon answered, or it was unavailable).
    spool_reason: str | None = None

    @classmethod
    def from_result(cls, result: AppendResult) -> AppendOutcome:
        return cls(
            event_id=result.event_id,
            seq=result.seq,
            version=result.version,
            duplicate=result.duplicate,
        )

    @classmethod
    def spooled_to(cls, event_id: str, spool_file: str, reason: str | None = None) -> AppendOutcome:
        return cls(
            event_id=event_id,
            seq=None,
            version=None,
            spooled=True,
            spool_file=spool_file,
            spool_reason=reason,
        )


class Pong(msgspec.Struct, frozen=True, kw_only=True):
    """The ``ping`` answer: the daemon's version and its data dir's origin."""

    version: str
    origin: str


class ReadResult(msgspec.Struct, frozen=True, kw_only=True):
    """Events after ``from_seq``; read again from ``last_seq`` to go on."""

    events: list[Event]
    last_seq: int


class SyncStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The ``status.sync`` fields of the contract."""

    state: str
    acked_seq: int | None = None
    pending: int | None = None
    oldest_pending_ms: int | None = None
    rejected: int | None = None
    last_error: Any = None
    next_attempt_ms: int | None = None


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """The ``status`` answer; ``raw`` keeps every field the daemon sent."""

    origin: str
    last_seq: int
    events: int
    streams: int
    sync: SyncStatus
    projections: Any
    db_bytes: int
    uptime_s: float
    raw: dict[str, Any] = {}

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> StatusReport:
        known = {k: v for k, v in result.items() if k in cls.__struct_fields__}
        return msgspec.convert({**known, "raw": result}, cls, strict=False)


class QueryPage(msgspec.Struct, frozen=True):
    """One page of a ``query``: its rows and the cursor to the next page (None: last)."""

    rows: list[dict[str, Any]]
    next: str | None = None
