"""Turning a ``query`` request into SQL over a view table, and rows back into dicts.

Filters are equality on the view's columns (``None`` matches null); on a list
column (``tags``, ``dependencies``) a filter matches rows having every given
item (a string counts as a one-item list). Rows come in creation order
(``row_seq``), newest first with ``order="desc"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from atlasd.errors import BadRequest
from atlasd.eventlog.projections.schema import VIEW_SPECS, ViewSpec

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "build_query", "row_to_dict"]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

_decode_list = msgspec.json.Decoder(list[str]).decode
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def build_query(
    view: object,
    filter: Mapping[str, Any] | None,
    limit: object,
    order: object,
    specs: Mapping[str, ViewSpec] = VIEW_SPECS,
) -> tuple[str, list[Any]]:
    """SQL and parameters for a query; :class:`BadRequest` for anything malformed.
    ``specs``: the views of the loaded packs (the built-in ones by default)."""
    if type(view) is not str or view not in specs:
        raise BadRequest(f"unknown view {view!r:.60}; views are {', '.join(specs)}")
    spec = specs[view]
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r:.40}")
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be 'asc' or 'desc', got {order!r:.40}")
    if filter is not None and not isinstance(filter, Mapping):
        raise BadRequest("filter must be an object")
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
    names = ", ".join(f'"{name}"' for name, _ in spec.columns)
    sql = f"SELECT {names} FROM {spec.table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY row_seq {'ASC' if order == 'asc' else 'DESC'} LIMIT ?"
    params.append(limit)
    return sql, params


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
    out: dict[str, Any] = {}
    for (name, kind), value in zip(specs[view].columns, row, strict=True):
        if kind == "list":
            out[name] = _decode_list(value) if value is not None else []
        elif kind == "json":
            out[name] = _decode(value) if value is not None else None
        elif kind == "bool" and value is not None:
            out[name] = bool(value)
        else:
            out[name] = value
    return out
