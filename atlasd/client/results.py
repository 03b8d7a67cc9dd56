"""Typed results of client calls, decoded from the daemon's answers.

The answers of ``status``, ``sync_now``, ``read`` and ``query`` are the
:mod:`atlasd.wire` Structs the daemon encodes, as they are.
"""

from __future__ import annotations

import msgspec

from atlasd.events import AppendResult
from atlasd.wire import QueryPage, ReadResult, StatusReport, SyncNowResult, SyncStatus

__all__ = [
    "AppendOutcome",
    "Pong",
    "QueryPage",
    "ReadResult",
    "StatusReport",
    "SyncNowResult",
    "SyncStatus",
]


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
