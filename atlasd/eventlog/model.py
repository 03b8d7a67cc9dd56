"""The event as stored, read and synced (docs/eventlog.md), and append inputs."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "AppendResult",
    "Event",
    "NewEvent",
    "ProjectionInfo",
    "Rejection",
    "StoreStats",
    "SyncState",
]


class NewEvent(msgspec.Struct, kw_only=True):
    """What a client asks to append; the store assigns everything else."""

    stream: str
    type: str
    data: dict[str, Any]
    event_id: str | None = None
    meta: dict[str, Any] | None = None
    #: The stream's current version must equal this (0: the stream must not exist).
    expected_version: int | None = None
    #: When the thing happened (ms since the epoch); the log's own clock when absent.
    occurred_at: int | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An immutable, stored event. ``meta`` is ``{}`` when the client gave none.

    ``occurred_at`` is set on every event appended since it was introduced; an
    older event lacks it and its moment is ``recorded_at`` (see :attr:`when`).
    """

    seq: int
    event_id: str
    stream: str
    version: int
    type: str
    data: dict[str, Any]
    meta: dict[str, Any]
    recorded_at: int
    occurred_at: int | None = None
    origin: str
    hash: str

    @property
    def when(self) -> int:
        """When the thing happened: ``occurred_at``, or ``recorded_at`` for older events."""
        return self.recorded_at if self.occurred_at is None else self.occurred_at


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where an appended event stands; ``duplicate`` when it was there already."""

    seq: int
    event_id: str
    version: int
    duplicate: bool


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """An event the remote refused for good (quarantined), with the remote's reason."""

    seq: int
    event_id: str
    code: str
    message: str


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


class ProjectionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A projector's stored state: its code version and the last seq it applied."""

    name: str
    version: int
    checkpoint: int


class StoreStats(msgspec.Struct, frozen=True, kw_only=True):
    """Figures for ``status``."""

    events: int
    streams: int
    last_seq: int
    #: Size of the database file plus its write-ahead log, in bytes.
    db_bytes: int
    projections: list[ProjectionInfo]
