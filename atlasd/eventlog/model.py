"""The store's own records: sync bookkeeping and figures (docs/eventlog.md).

:class:`Rejection` and :class:`ProjectionInfo` travel in ``status`` and live in
:mod:`atlasd.reports`.

The event itself and the append input are :mod:`atlasd.events`, below every layer.
"""

from __future__ import annotations

import msgspec

from atlasd.reports import ProjectionInfo, Rejection

__all__ = [
    "ProjectionInfo",
    "Rejection",
    "StoreStats",
    "SyncState",
]


class SyncState(msgspec.Struct, frozen=True, kw_only=True):
    """The sync cursor as stored: what the remote holds and what is still to send."""

    #: Every event up to this seq was accepted (or quarantined) by the remote.
    acked_seq: int
    #: Events with seq > acked_seq.
    pending: int
    #: ``recorded_at`` of the first pending event, or None when nothing is pending.
    oldest_pending_ms: int | None
    #: Quarantined events (refused by the remote).
    rejected: int


class StoreStats(msgspec.Struct, frozen=True, kw_only=True):
    """Figures for ``status``."""

    events: int
    streams: int
    last_seq: int
    #: Size of the database file plus its write-ahead log, in bytes.
    db_bytes: int
    projections: list[ProjectionInfo]
