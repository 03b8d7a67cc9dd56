"""What the async and sync clients share: building requests, reading answers.

Both clients send the same :mod:`atlasd.wire` request structs and turn the
same answers into typed results or :mod:`atlasd.errors` exceptions; only the
transport differs.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import msgspec

from atlasd import wire
from atlasd.errors import AtlasdError, Internal, InvalidValue, error_from_wire
from atlasd.events import AppendResult, Event, NewEvent
from atlasd.events.ids import new_event_id
from atlasd.events.validation import validate_new_event
from atlasd.packs.loader import PackError
from atlasd.packs.registry import PackSet, builtin_packs, default_packs_dir, load_packs

from .results import QueryPage

__all__ = [
    "PAGE_SIZE",
    "Order",
    "QueryArgs",
    "answer_as",
    "append_request",
    "batch_request",
    "check",
    "check_offline",
    "client_packs",
    "connection_refusal",
    "page_size",
    "query_request",
    "read_request",
    "stamped",
    "subscribe_request",
    "to_event",
    "to_page",
    "to_results",
    "to_rows",
    "watch_request",
]

_T = TypeVar("_T")

FromSeq = int | Literal["end"]
#: The order of a query's rows by the view's main column.
Order = Literal["asc", "desc"]


def stamped(event: NewEvent) -> NewEvent:
    """``event`` with a client-made UUIDv7 id (so retries are safe) and ``occurred_at``
    set to now (so an event spooled or retried later keeps its moment), where absent."""
    if event.event_id is not None and event.occurred_at is not None:
        return event
    return msgspec.structs.replace(
        event,
        event_id=new_event_id() if event.event_id is None else event.event_id,
        occurred_at=time.time_ns() // 1_000_000 if event.occurred_at is None else event.occurred_at,
    )


def append_request(event: NewEvent) -> wire.Append:
    return wire.Append(
        stream=event.stream,
        type=event.type,
        data=event.data,
        event_id=event.event_id,
        meta=event.meta,
        expected_version=event.expected_version,
        occurred_at=event.occurred_at,
    )


def batch_request(events: Sequence[NewEvent]) -> wire.AppendBatch:
    return wire.AppendBatch(events=list(events))


def read_request(
    from_seq: int, stream: str | None, types: Sequence[str] | None, limit: int | None
) -> wire.Read:
    return wire.Read(
        from_seq=from_seq,
        stream=stream,
        types=list(types) if types is not None else None,
        limit=limit,
    )


def subscribe_request(
    from_seq: FromSeq, stream: str | None, types: Sequence[str] | None
) -> wire.Subscribe:
    return wire.Subscribe(
        from_seq=from_seq, stream=stream, types=list(types) if types is not None else None
    )


class QueryArgs(msgspec.Struct, frozen=True, kw_only=True):
    """The params of a ``query``/``watch`` besides its view and cursor."""

    filter: dict[str, Any] | None = None
    limit: int | None = None
    order: Order | None = None
    order_by: str | None = None
    since: int | None = None
    until: int | None = None


#: Rows per page when a call reads several pages (the daemon's default page size).
PAGE_SIZE = 1000


def page_size(limit: int | None) -> int:
    """The page size for reading up to ``limit`` rows (None: all of them)."""
    return PAGE_SIZE if limit is None else max(1, min(limit, PAGE_SIZE))


def query_request(view: str, args: QueryArgs, after: str | None = None) -> wire.Query:
    return wire.Query(
        view=view,
        filter=args.filter,
        limit=args.limit,
        order=args.order,
        order_by=args.order_by,
        after=after,
        since=args.since,
        until=args.until,
    )


def watch_request(view: str, args: QueryArgs) -> wire.Watch:
    return wire.Watch(
        view=view,
        filter=args.filter,
        limit=args.limit,
        order=args.order,
        order_by=args.order_by,
        since=args.since,
        until=args.until,
    )


def answer_as(result: Any, kind: type[_T], op: str) -> _T:
    """The ``result`` of an ``op`` answer as ``kind``.

    Error handling: an answer of another shape (a daemon of another version, or
    not a daemon at all) raises :class:`~atlasd.errors.Internal` naming the op
    and what did not fit, never the decoder's own exception.
    """
    try:
        return msgspec.convert(result, kind)
    except msgspec.ValidationError as exc:
        raise Internal(f"unexpected answer to {op} from the daemon: {exc}") from exc


def to_page(result: Any) -> QueryPage:
    """The page of a ``query`` answer."""
    return answer_as(result, QueryPage, "query")


@functools.cache
def client_packs() -> PackSet:
    """The packs whose schemas the client checks: the built-in ones and the operator's
    from the default packs directory (the built-in ones alone when those do not load)."""
    try:
        return load_packs(default_packs_dir())
    except PackError:
        return builtin_packs()


def check_offline(events: Sequence[NewEvent], *, batch: bool) -> None:
    """Refuse, before spooling, what the daemon would refuse online, with its message:
    what Convex can store, then the pack schema of the event's type."""
    packs = client_packs()
    for index, event in enumerate(events):
        try:
            validate_new_event(event)
            packs.check_event(event.type, event.data)
        except InvalidValue as error:
            if not batch:
                raise
            raise InvalidValue(f"events[{index}].{error.message}", **error.extra) from None


def connection_refusal(response: wire.Response) -> AtlasdError | None:
    """The error of an answer with no id: the daemon refused the connection or a line
    before reading a request (``too_large``, ``unavailable`` at the connection
    limit or while stopping, ``forbidden``), as its own error class."""
    if response.id is None and response.ok is False and response.error is not None:
        return error_from_wire(response.error)
    return None


def check(response: wire.Response) -> Any:
    """The ``result`` of a success line; raises the daemon's error otherwise."""
    if response.ok is True:
        return response.result
    if response.ok is False and response.error is not None:
        raise error_from_wire(response.error)
    raise Internal(f"unexpected answer from the daemon: {msgspec.json.encode(response)!r}")


class _BatchAnswer(msgspec.Struct):
    results: list[AppendResult]


def to_results(result: Any) -> list[AppendResult]:
    """The ``results`` list of an ``append_batch`` answer."""
    return answer_as(result, _BatchAnswer, "append_batch").results


def to_event(response: wire.Response) -> Event:
    """The event of one subscription line; raises the error a stream ends with."""
    if response.event is not None:
        return response.event
    check(response)
    raise Internal("subscription line carries no event")


def to_rows(response: wire.Response) -> list[dict[str, Any]]:
    """The rows of one ``watch`` line; raises the error a watch ends with."""
    if response.rows is not None:
        return response.rows
    result = check(response)
    if isinstance(result, dict) and isinstance(result.get("rows"), list):
        return answer_as(result["rows"], list[dict[str, Any]], "watch")
    raise Internal("watch line carries no rows")
