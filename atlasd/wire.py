"""The socket protocol's types (docs/protocol.md), shared by daemon and client.

One request per line, one response line per request. Requests are a tagged
union of Structs keyed by ``"op"``, decoded by one Decoder built once; every
request may carry ``"id"`` (a JSON scalar), echoed back in every line answering
it (``null`` when the request had none or could not be read).

Unknown request fields are refused (``bad_request``) so that a misspelt
parameter such as ``expected_verison`` never silently drops a check.

Response lines::

    {"id": ..., "ok": true, "result": {...}}
    {"id": ..., "ok": false, "error": {"code": ..., "message": ..., ...}}
    {"id": ..., "event": {...}}        subscribe, one per event
    {"id": ..., "rows": [...]}         watch, each time the answer changes

Results: the answers of ``status``, ``sync_now``, ``read`` and ``query`` are
Structs here too (:class:`StatusReport`, :class:`SyncStatus`,
:class:`SyncNowResult`, :class:`ReadResult`, :class:`QueryPage`): the daemon
encodes them and the clients decode them, so both sides agree on one shape.
Fields only some answers carry are ``UNSET`` (left out of the line), fields
that may be ``null`` are always sent.

Error handling: :func:`decode_request` raises :class:`~atlasd.errors.BadRequest`
for anything that is not a well-typed request; the caller still learns the
request's ``id`` when the line was a JSON object that carried one.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeAlias, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from atlasd.errors import AtlasdError, BadRequest
from atlasd.events import Event, NewEvent
from atlasd.events.model import MAX_INT64, Int64, JsonObject
from atlasd.reports import (
    CapState,
    CountersSnapshot,
    IntegrityReport,
    LineageEntry,
    ProjectionInfo,
    Rejection,
)

__all__ = [
    "Append",
    "AppendBatch",
    "CompactionStatus",
    "EventIn",
    "Ping",
    "Query",
    "QueryPage",
    "Read",
    "ReadResult",
    "Request",
    "RequestId",
    "Response",
    "SpoolCounts",
    "Status",
    "StatusReport",
    "Subscribe",
    "SyncNow",
    "SyncNowResult",
    "SyncStatus",
    "UnreadableRequest",
    "Watch",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_event_line",
    "encode_ok",
    "encode_request",
    "encode_rows_line",
    "explain_decode_error",
]

#: Any JSON scalar; arrays and objects are refused as ids.
RequestId: TypeAlias = int | float | str | bool | None

#: ``read`` answers at most this many events per call when no limit is given.
DEFAULT_READ_LIMIT = 1000
#: The largest ``limit`` a ``read`` accepts (bounds one response line).
MAX_READ_LIMIT = 10_000
#: A sequence number, version or cursor: what fits the store's integer columns.
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
ReadLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_READ_LIMIT)]
QueryLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_INT64)]
#: A count of things (events, files, connections, bytes): never negative.
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
#: A moment in ms since the epoch.
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
#: Seconds, never negative (uptime).
Seconds = Annotated[float, msgspec.Meta(ge=0)]
#: What the sync is doing (docs/sync.md).
SyncStateName = Literal["disabled", "idle", "sending", "backoff", "auth_error"]


class _Base(
    msgspec.Struct,
    tag_field="op",
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    id: RequestId = None


#: One event to append, as a client sends it (an ``append_batch`` item, a spool line):
#: the store's own input struct, decoded as is.
EventIn = NewEvent


class Ping(_Base, tag="ping"):
    """Result: ``{"version", "origin"}``; a ready daemon always answers."""


class Append(
    NewEvent,
    tag_field="op",
    tag="append",
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """Result: ``{"seq", "event_id", "version", "duplicate"}``.

    The event's own fields at top level: the request is the store's input
    (:class:`~atlasd.events.NewEvent`) plus the request ``id``, and is handed
    to the store as decoded.
    """

    id: RequestId = None


class AppendBatch(_Base, tag="append_batch"):
    """Result: ``{"results": [...]}``; all events or none are appended."""

    events: list[NewEvent]


class Read(_Base, tag="read"):
    """Result: ``{"events": [...], "last_seq"}``; events with seq > ``from_seq``.

    ``last_seq`` is a cursor: read again with ``from_seq = last_seq`` to go on.
    """

    from_seq: Seq = 0
    stream: str | None = None
    types: list[str] | None = None
    limit: ReadLimit | None = None


class Subscribe(_Base, tag="subscribe"):
    """Catch-up from ``from_seq`` (exclusive; ``"end"``: live only), then live."""

    from_seq: Seq | Literal["end"] = 0
    stream: str | None = None
    types: list[str] | None = None


class Query(_Base, tag="query"):
    """Result: ``{"rows": [...], "next"}``: one page of a view's rows.

    ``next`` is null on the last page, else an opaque cursor: ask again with
    ``after = next`` (and the same other params) for the following page.
    ``order_by`` names a key or time column (default: creation order);
    ``since``/``until`` (ms) keep rows whose time column is in ``[since, until)``.
    """

    view: str
    filter: JsonObject | None = None
    limit: QueryLimit | None = None
    order: Literal["asc", "desc"] | None = None
    order_by: str | None = None
    after: str | None = None
    since: Int64 | None = None
    until: Int64 | None = None


class Watch(_Base, tag="watch"):
    """A ``query`` answered now and again each time its answer changes (first page)."""

    view: str
    filter: JsonObject | None = None
    limit: QueryLimit | None = None
    order: Literal["asc", "desc"] | None = None
    order_by: str | None = None
    after: str | None = None
    since: Int64 | None = None
    until: Int64 | None = None


class Status(_Base, tag="status"):
    """Result: the contract's status fields (origin, last_seq, sync.*, ...)."""


class SyncNow(_Base, tag="sync_now"):
    """Result: ``{"triggered": bool, ...}``.

    ``wait``: answer once the round finished, with its outcome.
    ``retry_rejected``: requeue quarantined events first (result ``requeued``).
    """

    wait: bool = False
    retry_rejected: bool = False


# -- results ------------------------------------------------------------------------


class SyncStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``status.sync``: where the sync stands (docs/protocol.md, docs/sync.md).

    ``remote_high_water``, ``failures`` and ``ingest_url`` are sent only while
    sync is on.
    """

    state: SyncStateName
    #: Every event up to this seq was accepted (or quarantined) by the remote.
    acked_seq: Seq
    #: Events with seq > ``acked_seq``.
    pending: Count
    #: ``recorded_at`` of the first pending event; null when nothing is pending.
    oldest_pending_ms: EpochMs | None
    #: Events in the quarantine.
    rejected: Count
    last_error: str | None
    next_attempt_ms: EpochMs | None
    remote_high_water: Seq | UnsetType | None = UNSET
    failures: Count | UnsetType = UNSET
    ingest_url: str | UnsetType | None = UNSET
    #: The first quarantined events, oldest first (``rejected`` counts them all).
    quarantine: list[Rejection] = []


class SpoolCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Files in the spool: waiting to be appended, and refused (``rejected/``)."""

    waiting: Count
    rejected: Count


class CompactionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``status.compaction``: retention's work (docs/eventlog.md, "Retention")."""

    #: The daemon compacts by itself (retention is set).
    auto: bool
    #: A run is going on now.
    running: bool
    #: The last run that moved anything, the daemon's or ``atlasd compact``'s
    #: (all null before the first): when it ended, what it moved and freed, and
    #: ``"daemon"`` or ``"offline"``.
    last_at_ms: EpochMs | None
    last_events: Count | None
    last_bytes_freed: Count | None
    last_by: Literal["daemon", "offline"] | None
    #: Steps run on the writer since start, and the longest (how long an append
    #: waited for one at most).
    steps: Count
    step_max_ms: Annotated[float, msgspec.Meta(ge=0)]


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """The ``status`` answer (docs/protocol.md, "status")."""

    origin: str
    #: The origins this log had before (restored, or a copied data dir), oldest first.
    origin_lineage: list[LineageEntry]
    version: str
    pid: Count
    last_seq: Seq
    events: Count
    streams: Count
    sync: SyncStatus
    projections: list[ProjectionInfo]
    db_bytes: Count
    #: How near the size cap (null: no cap).
    cap: CapState | None
    uptime_s: Seconds
    counters: CountersSnapshot
    spool: SpoolCounts
    connections: Count
    subscribers: Count
    watchers: Count
    socket: str
    data_dir: str
    integrity: IntegrityReport
    #: Unset from a daemon older than retention (one started before an upgrade).
    compaction: CompactionStatus | UnsetType = UNSET


class SyncNowResult(msgspec.Struct, frozen=True, kw_only=True):
    """The ``sync_now`` answer: whether a round was started and, with ``wait``, its outcome.

    Sync off: ``reason`` says why nothing was triggered. ``requeued``: events
    taken out of quarantine first (``retry_rejected``).
    """

    triggered: bool
    reason: str | UnsetType = UNSET
    #: The round (or the refusal to run one, ``state`` then says why) ended without error.
    ok: bool | UnsetType = UNSET
    state: SyncStateName | UnsetType = UNSET
    sent: Count | UnsetType = UNSET
    accepted: Count | UnsetType = UNSET
    duplicates: Count | UnsetType = UNSET
    rejected: Count | UnsetType = UNSET
    retried: Count | UnsetType = UNSET
    acked_seq: Seq | UnsetType = UNSET
    error: str | UnsetType | None = UNSET
    next_attempt_ms: EpochMs | UnsetType | None = UNSET
    requeued: Count | UnsetType = UNSET


#: The daemon sends the stored JSON of each event as is; clients decode :class:`Event`.
EventT = TypeVar("EventT", Event, msgspec.Raw)


class ReadResult(msgspec.Struct, Generic[EventT], frozen=True, kw_only=True):
    """The ``read`` answer: events after ``from_seq``; read again from ``last_seq``."""

    events: list[EventT]
    last_seq: Seq


class QueryPage(msgspec.Struct, frozen=True):
    """The ``query`` answer: one page of rows and the cursor to the next (null: last)."""

    rows: list[dict[str, Any]]
    next: str | None = None


Request: TypeAlias = (
    Ping | Append | AppendBatch | Read | Subscribe | Query | Watch | Status | SyncNow
)


class UnreadableRequest(BadRequest):
    """A line that is not a well-typed request; ``request_id`` is its ``id`` if readable."""

    def __init__(self, message: str, request_id: RequestId = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class _IdOnly(msgspec.Struct):
    """Fallback to recover the ``id`` of a request that failed validation."""

    id: Any = None


class Response(msgspec.Struct, kw_only=True):
    """Any line the daemon sends, as decoded by a client.

    Exactly one of ``result``/``error`` (with ``ok``), ``event`` or ``rows`` is set.
    """

    id: Any = None
    ok: bool | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    event: Event | None = None
    rows: list[dict[str, Any]] | None = None


class _Ok(msgspec.Struct):
    id: Any
    ok: bool
    result: Any


class _Err(msgspec.Struct):
    id: Any
    ok: bool
    error: dict[str, Any]


class _EventLine(msgspec.Struct):
    id: Any
    event: Any


class _RowsLine(msgspec.Struct):
    id: Any
    rows: Any


_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_id_decoder = msgspec.json.Decoder(_IdOnly)
_response_decoder = msgspec.json.Decoder(Response)
_encoder = msgspec.json.Encoder()


def decode_request(line: bytes) -> Request:
    """Decode one request line (without or with its trailing newline).

    Error handling: raises :class:`UnreadableRequest` (a ``bad_request``) whose
    ``request_id`` is the line's ``id`` when it could be read, else ``None``.
    """
    try:
        return _request_decoder.decode(line)
    except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
        # RecursionError: the decoder skipping a deep value (an unknown field, looking
        # for the op) hit the interpreter's recursion guard
        raise _bad_request(line, exc) from exc


def explain_decode_error(exc: Exception) -> str:
    """What a decoding failure of one line means, for the person who sent it."""
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return f"malformed JSON: {message}"
    if message.startswith("Invalid value ") and message.endswith("at `$.op`"):
        value = message[len("Invalid value ") :].rsplit(" - at", 1)[0]
        return f"unknown op {value}"
    return message


def _bad_request(line: bytes, exc: Exception) -> UnreadableRequest:
    request_id: RequestId = None
    if isinstance(exc, msgspec.ValidationError):
        try:
            candidate = _id_decoder.decode(line).id
        except (msgspec.MsgspecError, ValueError, RecursionError):
            candidate = None
        if candidate is None or isinstance(candidate, (int, float, str, bool)):
            request_id = candidate
    message = explain_decode_error(exc)
    if isinstance(exc, UnicodeDecodeError):
        message = "request is not valid UTF-8"
    return UnreadableRequest(message, request_id)


def encode_request(request: Request) -> bytes:
    """One request line, newline included."""
    return _encoder.encode(request) + b"\n"


def encode_ok(request_id: Any, result: Any) -> bytes:
    """A success line; ``result`` may hold ``msgspec.Raw`` pieces (spliced as is)."""
    return _encoder.encode(_Ok(request_id, True, result)) + b"\n"


def encode_error(request_id: Any, error: AtlasdError) -> bytes:
    """A failure line carrying the error's contract code and details."""
    return _encoder.encode(_Err(request_id, False, error.to_wire())) + b"\n"


def encode_event_line(request_id: Any, event: msgspec.Raw | Event) -> bytes:
    """A subscription line for one event (already encoded JSON or an Event)."""
    return _encoder.encode(_EventLine(request_id, event)) + b"\n"


def encode_rows_line(request_id: Any, rows: Any) -> bytes:
    """A watch line: the query's answer as it is now."""
    return _encoder.encode(_RowsLine(request_id, rows)) + b"\n"


def decode_response(line: bytes) -> Response:
    """Decode one line sent by the daemon (client side)."""
    return _response_decoder.decode(line)
