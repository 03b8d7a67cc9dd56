"""The event as stored, read and synced (CONTRACT section 2), and append inputs."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["AppendResult", "Event", "NewEvent"]


class NewEvent(msgspec.Struct, kw_only=True):
    """What a client asks to append; the store assigns everything else."""

    stream: str
    type: str
    data: dict[str, Any]
    event_id: str | None = None
    meta: dict[str, Any] | None = None
    #: The stream's current version must equal this (0: the stream must not exist).
    expected_version: int | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable, stored event. ``meta`` is ``{}`` when the client gave none."""

    seq: int
    event_id: str
    stream: str
    version: int
    type: str
    data: dict[str, Any]
    meta: dict[str, Any]
    recorded_at: int
    origin: str
    hash: str


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where an appended event stands; ``duplicate`` when it was there already."""

    seq: int
    event_id: str
    version: int
    duplicate: bool
