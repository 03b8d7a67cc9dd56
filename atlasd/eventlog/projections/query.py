"""Turning a ``query`` request into SQL over a view table, and rows back into dicts.

Filters are equality on the view's columns (``None`` matches null); on a list
column (``tags``, ``dependencies``) a filter matches rows having every given
item (a string counts as a one-item list). The views are those of the loaded
packs (``specs``; the built-in ones by default).

Order: by default rows come in creation order (``row_seq``, the seq of the
event that created the row), newest first with ``order="desc"``. ``order_by``
names a key column or a time column instead; ties (and nulls) are broken by
``row_seq``, so the order is total. ``since``/``until`` keep rows whose
order column is in ``[since, until)``.

Paging is keyset pagination: a page ends with a cursor holding its last row's
(order value, row_seq); the next page is the rows strictly after that point.
A page therefore costs one index seek plus ``limit`` rows at any depth, and
rows appended meanwhile never shift it. The cursor is base64 of JSON and comes
back from the client: it is checked like any other input (a forged one is
``bad_request``) and is bound to its query, so it cannot be replayed against
another view, filter, order or range.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from atlasd.errors import BadRequest
from atlasd.eventlog.projections.schema import VIEW_SPECS, ViewSpec, time_columns

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "QueryPage",
    "QueryParams",
    "QueryPlan",
    "build_query",
    "order_columns",
    "page_from_rows",
    "row_to_dict",
]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
#: The largest ms value ``since``/``until`` take (Convex's exact integer range).
_MAX_MS = 2**53
#: A cursor longer than this is not one of ours (a key value is at most a few KiB).
_MAX_CURSOR_CHARS = 16_384
#: The cursor format; a cursor of another version is refused.
_CURSOR_VERSION = 1

_decode_list = msgspec.json.Decoder(list[str]).decode
_decode = msgspec.json.decode
_encode = msgspec.json.encode


class QueryParams(msgspec.Struct, frozen=True, kw_only=True):
    """A ``query`` as asked (unchecked: :func:`build_query` checks every field)."""

    view: object
    filter: Mapping[str, Any] | None = None
    limit: object = DEFAULT_LIMIT
    order: object = "asc"
    order_by: object = None
    after: object = None
    since: object = None
    until: object = None


class QueryPage(msgspec.Struct, frozen=True):
    """One page of rows and the cursor to the next (None: this was the last)."""

    rows: list[dict[str, Any]]
    next: str | None = None


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    version: int
    #: Binds the cursor to the query it came from (view, filter, order, range).
    query: str
    value: str | int | float | None
    row_seq: int


_decode_cursor = msgspec.json.Decoder(_Cursor).decode


class QueryPlan(msgspec.Struct, frozen=True):
    """What :func:`page_from_rows` needs to cut a page and make its cursor."""

    view: str
    limit: int
    order_by: str | None
    fingerprint: str
    #: the view's columns and their kinds, to turn rows into dicts
    columns: tuple[tuple[str, str], ...] = ()


def order_columns(spec: ViewSpec) -> tuple[str, ...]:
    """The columns ``order_by`` accepts on a view: its key columns, then its time columns."""
    return tuple(dict.fromkeys((*spec.key, *time_columns(spec))))


def build_query(
    view: object,
    filter: Mapping[str, Any] | None,
    limit: object,
    order: object,
    *,
    order_by: object = None,
    after: object = None,
    since: object = None,
    until: object = None,
    specs: Mapping[str, ViewSpec] = VIEW_SPECS,
) -> tuple[list[tuple[str, list[Any]]], QueryPlan]:
    """The SQL segments and the page plan for a query; :class:`BadRequest` for
    anything malformed.

    Each segment is a statement and its parameters, missing only the final
    ``LIMIT ?``: run them in turn, each limited to the rows still wanted, until
    ``limit + 1`` rows are in hand (so :func:`page_from_rows` knows whether more
    follow). Rows carry their order value and ``row_seq`` after the columns.
    Ordering by a column that may be null takes two segments (nulls sort first)
    so that each stays one index range instead of an OR that scans.
    """
    if type(view) is not str or view not in specs:
        raise BadRequest(f"unknown view {view!r:.60}; views are {', '.join(specs)}")
    spec = specs[view]
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r:.40}")
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be 'asc' or 'desc', got {order!r:.40}")
    if filter is not None and not isinstance(filter, Mapping):
        raise BadRequest("filter must be an object")
    times = time_columns(spec)
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and (type(bound) is not int or not 0 <= bound <= _MAX_MS):
            raise BadRequest(f"{name} must be an integer of ms in 0..2^53, got {bound!r:.40}")
    if order_by is None and (since is not None or until is not None):
        if not times:
            raise BadRequest(f"view {view} has no time column for since/until")
        order_by = times[0]  # the view's main time column
    allowed = order_columns(spec)
    if order_by is not None and (type(order_by) is not str or order_by not in allowed):
        raise BadRequest(
            f"order_by must be one of {', '.join(allowed)} on view {view}, got {order_by!r:.60}"
        )
    if (since is not None or until is not None) and order_by not in times:
        raise BadRequest(
            f"since/until apply to a time column; order_by {order_by} is not one"
            f" (time columns of {view}: {', '.join(times) or 'none'})"
        )
    where, params = _filter_clauses(view, spec, filter)
    direction: Literal["asc", "desc"] = "asc" if order == "asc" else "desc"
    fingerprint = _fingerprint(view, filter, direction, order_by, since, until)
    # column names are [a-z][a-z0-9_]*, quoted because some are keywords (commit)
    quoted = f'"{order_by}"' if type(order_by) is str else None
    if quoted is not None:
        if since is not None:
            where.append(f"{quoted} >= ?")
            params.append(since)
        if until is not None:
            where.append(f"{quoted} < ?")
            params.append(until)
    cursor = None if after is None else _read_cursor(after, fingerprint)
    names = ", ".join(f'"{name}"' for name, _ in spec.columns)
    head = f"SELECT {names}, {quoted or 'NULL'}, row_seq FROM {spec.table}"
    word = "ASC" if direction == "asc" else "DESC"
    column = order_by if type(order_by) is str else None
    ranged = since is not None or until is not None
    ordering = f"{quoted} {word}, row_seq {word}" if quoted else f"row_seq {word}"
    segments: list[tuple[str, list[Any]]] = []
    for clause, values in _segments(quoted, direction, cursor, ranged=ranged):
        conditions = [*where, clause] if clause else where
        sql = head + (" WHERE " + " AND ".join(conditions) if conditions else "")
        segments.append((f"{sql} ORDER BY {ordering} LIMIT ?", [*params, *values]))
    plan = QueryPlan(
        view=view,
        limit=limit,
        order_by=column,
        fingerprint=fingerprint,
        columns=tuple(spec.columns),
    )
    return segments, plan


def page_from_rows(plan: QueryPlan, rows: Sequence[Sequence[Any]]) -> QueryPage:
    """The page for the rows fetched by :func:`build_query`'s SQL."""
    more = len(rows) > plan.limit
    page = rows[: plan.limit]
    out = [_to_dict(plan.columns, row[:-2]) for row in page]
    if not more:
        return QueryPage(out, None)
    value, row_seq = page[-1][-2], page[-1][-1]
    token = _encode(_Cursor(_CURSOR_VERSION, plan.fingerprint, value, row_seq))
    return QueryPage(out, base64.urlsafe_b64encode(token).decode("ascii").rstrip("="))


def _filter_clauses(
    view: str, spec: ViewSpec, filter: Mapping[str, Any] | None
) -> tuple[list[str], list[Any]]:
    kinds = dict(spec.columns)
    where: list[str] = []
    params: list[Any] = []
    for column, value in (filter or {}).items():
        kind = kinds.get(column)
        if kind is None:
            raise BadRequest(
                f"view {view} has no column {column!r:.60}; columns are {', '.join(kinds)}"
            )
        if kind == "list" and value is not None:
            items = [value] if type(value) is str else value
            if type(items) is not list or not all(type(item) is str for item in items):
                raise BadRequest(f"filter {column} must be a string or a list of strings")
            for item in dict.fromkeys(items):
                where.append(f'EXISTS (SELECT 1 FROM json_each("{column}") WHERE value = ?)')
                params.append(item)
            continue
        if value is None:
            where.append(f'"{column}" IS NULL')
            continue
        where.append(f'"{column}" = ?')
        params.append(_filter_value(view, column, kind, value))
    return where, params


def _fingerprint(
    view: str,
    filter: Mapping[str, Any] | None,
    order: str,
    order_by: object,
    since: object,
    until: object,
) -> str:
    """A short digest of everything that decides a query's order and rows."""
    try:
        shape = _encode([view, dict(filter or {}), order, order_by, since, until], order="sorted")
    except (TypeError, msgspec.EncodeError) as exc:
        raise BadRequest(f"filter is not plain JSON: {exc}") from None
    return hashlib.sha256(shape).hexdigest()[:16]


def _read_cursor(after: object, fingerprint: str) -> _Cursor:
    """The cursor in ``after``, checked as untrusted input."""
    if type(after) is not str or not 0 < len(after) <= _MAX_CURSOR_CHARS:
        raise BadRequest("after must be the non-empty 'next' string of a previous answer")
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
        cursor = _decode_cursor(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("after is not a cursor this daemon made") from None
    if cursor.version != _CURSOR_VERSION:
        raise BadRequest("after is a cursor of another format; start the query again")
    if cursor.query != fingerprint:
        raise BadRequest(
            "after belongs to another query: keep view, filter, order, order_by,"
            " since and until as they were"
        )
    value = cursor.value
    if not 0 <= cursor.row_seq < 2**63 or (type(value) is int and not -(2**63) <= value < 2**63):
        raise BadRequest("after is not a cursor this daemon made")
    return cursor


def _segments(
    order_by: str | None,
    order: Literal["asc", "desc"],
    cursor: _Cursor | None,
    *,
    ranged: bool,
) -> list[tuple[str, list[Any]]]:
    """The WHERE clauses, in page order, for the rows strictly after ``cursor``.

    SQLite sorts nulls first: ascending walks the null rows by row_seq, then
    the values; descending the other way round. A range (since/until) has no
    null rows.
    """
    if order_by is None:
        if cursor is None:
            return [("", [])]
        return [("row_seq > ?" if order == "asc" else "row_seq < ?", [cursor.row_seq])]
    nulls_done = False  # the cursor is past the null rows
    if cursor is None:
        null_seg: tuple[str, list[Any]] = (f"{order_by} IS NULL", [])
        value_seg: tuple[str, list[Any]] = (f"{order_by} IS NOT NULL", [])
    elif cursor.value is None:
        sign = ">" if order == "asc" else "<"
        null_seg = (f"{order_by} IS NULL AND row_seq {sign} ?", [cursor.row_seq])
        value_seg = (f"{order_by} IS NOT NULL", [])
        if order == "desc":
            return [null_seg]
    else:
        sign = ">" if order == "asc" else "<"
        value_seg = (f"({order_by}, row_seq) {sign} (?, ?)", [cursor.value, cursor.row_seq])
        null_seg = (f"{order_by} IS NULL", [])
        nulls_done = order == "asc"
    if ranged or nulls_done:
        return [value_seg]
    return [null_seg, value_seg] if order == "asc" else [value_seg, null_seg]


def _filter_value(view: str, column: str, kind: str, value: Any) -> Any:
    t = type(value)
    ok = {
        "str": t is str,
        "num": t is int or t is float,
        "int": t is int,
        "bool": t is bool,
        "list": t is list and all(type(item) is str for item in value),
        "json": True,
    }[kind]
    if not ok:
        expected = {
            "str": "a string",
            "num": "a number",
            "int": "an integer",
            "bool": "a boolean",
            "list": "a list of strings",
            "json": "a JSON value",
        }[kind]
        raise BadRequest(f"filter {view}.{column} must be {expected} or null, got {value!r:.60}")
    if kind == "json":
        return _encode(value).decode()
    if kind == "bool":
        return int(value)
    return value


def row_to_dict(
    view: str, row: Sequence[Any], specs: Mapping[str, ViewSpec] = VIEW_SPECS
) -> dict[str, Any]:
    """A stored row as the contract's row: lists and JSON decoded, booleans as booleans."""
    return _to_dict(specs[view].columns, row)


def _to_dict(columns: Sequence[tuple[str, str]], row: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (name, kind), value in zip(columns, row, strict=True):
        if kind == "list":
            out[name] = _decode_list(value) if value is not None else []
        elif kind == "json":
            out[name] = _decode(value) if value is not None else None
        elif kind == "bool" and value is not None:
            out[name] = bool(value)
        else:
            out[name] = value
    return out
