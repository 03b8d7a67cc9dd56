"""The event as appended, stored and read: the types every layer shares (docs/eventlog.md).

:class:`NewEvent` is the one input struct on the append path: the client builds
it, the socket protocol's ``append`` request is a tagged subclass of it and an
``append_batch`` carries a list of it, the spool holds it one per line, and the
store takes it as decoded. Its integer bounds are the decoder's: a value that
does not fit 64 bits is refused while the line is read; the ranges that matter
are the validation's to check (:mod:`atlasd.events.validation`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

import msgspec

__all__ = [
    "MAX_INT64",
    "AppendResult",
    "Event",
    "Int64",
    "JsonObject",
    "NewEvent",
]

#: The largest integer a decoded field takes (SQLite's signed 64 bits).
MAX_INT64 = 2**63 - 1
#: An integer the decoder keeps within 64 bits; its range is the validation's to check.
Int64 = Annotated[int, msgspec.Meta(ge=-MAX_INT64, le=MAX_INT64)]

#: ``data`` and ``meta``. Convex's nesting limit on them is the validation's to enforce
#: (``invalid_value`` naming the path, as a client checking offline says too). The
#: decoder itself recurses only as deep as the interpreter's recursion guard lets it:
#: a line nested deeper than that is refused unread. (A depth-limited union type would
#: stop it sooner, but building one 15 levels deep cost seconds at every start:
#: exponential in typing's hashing.)
JsonObject: TypeAlias = dict[str, Any]


class NewEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a client asks to append; the store assigns everything else.

    Unknown fields are refused when one is decoded, so that a misspelt
    ``expected_verison`` never silently drops a check.
    """

    stream: str
    type: str
    data: JsonObject
    event_id: str | None = None
    meta: JsonObject | None = None
    #: The stream's current version must equal this (0: the stream must not exist).
    expected_version: Int64 | None = None
    #: When the thing happened (ms since the epoch); the log's own clock when absent.
    occurred_at: Int64 | None = None


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
