"""The view tables' shapes as the query layer sees them, made from the pack definitions.

A :class:`ViewSpec` says, for one view, its table, key, columns (with their
kinds), time columns and indexes. The specs of the built-in packs are
:data:`VIEW_SPECS`; :func:`view_specs` makes them for any loaded pack set
(operator packs included). The tables themselves are made by
:mod:`atlasd.packs.tables`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Literal, NamedTuple

from atlasd.packs import tables
from atlasd.packs.registry import PackSet, builtin_packs

__all__ = [
    "VIEWS",
    "VIEW_SPECS",
    "ColumnKind",
    "ViewSpec",
    "create_view_tables",
    "drop_view_tables",
    "view_specs",
]

ColumnKind = Literal["str", "num", "bool", "list", "int", "json"]

_KINDS: dict[str, ColumnKind] = {
    "string": "str",
    "integer": "int",
    "time": "int",
    "number": "num",
    "boolean": "bool",
    "string_list": "list",
    "json": "json",
}


class ViewSpec(NamedTuple):
    name: str
    #: The definition's version: when it changes the view is rebuilt on open.
    version: int
    table: str
    key: tuple[str, ...]
    #: Output columns in order, with their kinds.
    columns: tuple[tuple[str, ColumnKind], ...]
    indexes: tuple[tuple[str, ...], ...]
    #: The main time column (ordering by time) and every time column.
    time: str = ""
    time_columns: tuple[str, ...] = ()
    pack: str = ""


def view_specs(packs: PackSet) -> dict[str, ViewSpec]:
    """One spec per view of the pack set, in pack order."""
    specs: dict[str, ViewSpec] = {}
    for name, view in packs.views.items():
        specs[name] = ViewSpec(
            name=name,
            version=packs.view_version(name),
            table=tables.table_name(name),
            key=view.key,
            columns=tuple((column, _KINDS[kind]) for column, kind in view.columns),
            indexes=tuple(tables.index_columns(packs, view)),
            time=view.time,
            time_columns=tuple(c for c, kind in view.columns if kind == "time"),
            pack=view.pack,
        )
    return specs


#: The built-in views' specs, in pack order.
VIEW_SPECS: dict[str, ViewSpec] = view_specs(builtin_packs())

#: The built-in view names.
VIEWS: tuple[str, ...] = tuple(VIEW_SPECS)


def create_view_tables(
    conn: sqlite3.Connection,
    names: Iterable[str] = VIEWS,
    *,
    indexes: bool = True,
    packs: PackSet | None = None,
) -> None:
    """Create the views' tables that do not exist (and their indexes unless told not to)."""
    tables.create_view_tables(conn, packs or builtin_packs(), names, indexes=indexes)


def drop_view_tables(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    tables.drop_view_tables(conn, names)
