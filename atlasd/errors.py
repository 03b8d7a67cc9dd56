"""The errors atlasd raises, each with the stable code that crosses the socket.

Hierarchy::

    AtlasdError                 root; code "internal"
    ├── BadRequest              bad_request: not JSON, not an object, unknown op,
    │                           wrong types, missing fields
    ├── TooLarge                too_large: a request line over the limit
    ├── InvalidValue            invalid_value: data/meta Convex cannot store,
    │                           malformed stream/type/event_id
    ├── VersionConflict         version_conflict: expected_version mismatch
    ├── EventIdConflict         event_id_conflict: same id, different content
    ├── Forbidden               forbidden: peer credentials not allowed
    ├── Unavailable             unavailable: shutting down, disk full, locked out
    ├── SlowConsumer            slow_consumer: a subscriber fell too far behind
    ├── Internal                internal: a bug; the message says what failed
    ├── DaemonUnreachable       client side only: no daemon answers the socket
    ├── RemoteError             atlasd.sync.remote: the Convex ingest did not take a
    │                           batch; its ``kind`` (network, timeout, throttled,
    │                           server, protocol, auth, bad_batch) drives the retry
    └── RemoteReadError         atlasd.remote_read: a read of the deployment got no
        │                       usable answer (network, HTTP status, body)
        └── RemoteReadRefused   the read query threw; ``remote_code`` says why
                                (unauthorized, bad_request, ...)

Lower-layer errors (sqlite3, OSError, httpx) are translated into these in
exactly one place each, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AtlasdError",
    "BadRequest",
    "DaemonUnreachable",
    "EventIdConflict",
    "Forbidden",
    "Internal",
    "InvalidValue",
    "SlowConsumer",
    "TooLarge",
    "Unavailable",
    "VersionConflict",
    "error_from_wire",
]


class AtlasdError(Exception):
    """Root of every atlasd error; ``code`` is the contract's error code."""

    code: ClassVar[str] = "internal"
    #: Whether retrying the same request later may succeed.
    retryable: ClassVar[bool] = False

    # positional-only: any name, even ``message``, may be a detail a daemon sent
    def __init__(self, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_wire(self) -> dict[str, Any]:
        """The ``error`` object of a failure response."""
        return {"code": self.code, "message": self.message, **self.extra}


class BadRequest(AtlasdError):
    code = "bad_request"


class TooLarge(AtlasdError):
    code = "too_large"


class InvalidValue(AtlasdError):
    code = "invalid_value"


class VersionConflict(AtlasdError):
    code = "version_conflict"

    def __init__(self, message: str, /, *, current_version: int, **extra: Any) -> None:
        super().__init__(message, current_version=current_version, **extra)
        self.current_version = current_version


class EventIdConflict(AtlasdError):
    code = "event_id_conflict"


class Forbidden(AtlasdError):
    code = "forbidden"


class Unavailable(AtlasdError):
    code = "unavailable"
    retryable = True


class SlowConsumer(AtlasdError):
    code = "slow_consumer"
    retryable = True


class Internal(AtlasdError):
    code = "internal"


class DaemonUnreachable(AtlasdError):
    """No daemon answers on the socket (never sent over the wire)."""

    code = "unreachable"
    retryable = True


_BY_CODE: dict[str, type[AtlasdError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        TooLarge,
        InvalidValue,
        VersionConflict,
        EventIdConflict,
        Forbidden,
        Unavailable,
        SlowConsumer,
        Internal,
    )
}


def error_from_wire(error: dict[str, Any]) -> AtlasdError:
    """Rebuild the exception a daemon reported in a failure response."""
    code = str(error.get("code", "internal"))
    message = str(error.get("message", code))
    extra = {k: v for k, v in error.items() if k not in ("code", "message")}
    cls = _BY_CODE.get(code, Internal)
    if cls is VersionConflict:
        current = extra.pop("current_version", -1)
        # a version that is not an integer is unknown, like a missing one
        known = type(current) is int
        return VersionConflict(message, current_version=current if known else -1, **extra)
    return cls(message, **extra)
