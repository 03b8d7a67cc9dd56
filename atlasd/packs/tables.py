"""The SQLite tables of pack views: names, DDL, and the statements the fold uses.

Each table has a hidden ``row_seq`` (the seq of the event that created the
row): the rowid, which gives ``query`` its creation order for free. Value
columns are declared without a type so SQLite keeps numbers exactly as given
(an integer stays an integer); booleans are stored as 0/1, and
``string_list`` and ``json`` columns as JSON text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from atlasd.packs.model import View
from atlasd.packs.registry import PackSet

__all__ = [
    "ENCODED_TYPES",
    "create_view_tables",
    "drop_unknown_view_tables",
    "drop_view_tables",
    "index_columns",
    "quote",
    "table_name",
]

#: Column types stored as JSON text.
ENCODED_TYPES = frozenset(("string_list", "json"))


def table_name(view: str) -> str:
    return f"view_{view}"


def quote(name: str) -> str:
    """A column name as an SQL identifier (names are ``[a-z][a-z0-9_]*``, but some are
    keywords: ``commit``)."""
    return f'"{name}"'


def index_columns(packs: PackSet, view: View) -> list[tuple[str, ...]]:
    """The view's declared indexes plus those its counts and removals look up by."""
    wanted: dict[tuple[str, ...], None] = dict.fromkeys(view.indexes)
    for other in packs.views.values():
        for count in other.counts:
            if count.view == view.name:
                wanted.setdefault(count.by, None)
    for event in packs.events.values():
        for action in event.apply:
            if action.op == "remove_matching" and action.view == view.name:
                wanted.setdefault(tuple(column for column, _ in action.key), None)
    return [cols for cols in wanted if cols != view.key]


def _ddl(packs: PackSet, view: View, indexes: bool) -> list[str]:
    table = table_name(view.name)
    cols = ["row_seq INTEGER PRIMARY KEY"]
    for name, _type in view.columns:
        cols.append(f"{quote(name)} TEXT NOT NULL" if name in view.key else quote(name))
    cols.append(f"UNIQUE ({', '.join(map(quote, view.key))})")
    ddl = [f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(cols)})"]
    for index in index_columns(packs, view) if indexes else ():
        ddl.append(
            f"CREATE INDEX IF NOT EXISTS {table}_{'_'.join(index)}"
            f" ON {table} ({', '.join(map(quote, index))})"
        )
    return ddl


def create_view_tables(
    conn: sqlite3.Connection, packs: PackSet, names: Iterable[str], *, indexes: bool = True
) -> None:
    """Create the named views' tables that do not exist (and their indexes unless told not to)."""
    for name in names:
        for statement in _ddl(packs, packs.views[name], indexes):
            conn.execute(statement)


def drop_view_tables(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    for name in names:
        conn.execute(f"DROP TABLE IF EXISTS {table_name(name)}")


def drop_unknown_view_tables(conn: sqlite3.Connection, packs: PackSet) -> list[str]:
    """Drop view tables (and projection rows) no loaded pack defines; their names."""
    known = {table_name(name) for name in packs.view_names}
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name LIKE 'view\\_%' ESCAPE '\\'"
        )
    ]
    dropped = [t for t in tables if t not in known]
    for table in dropped:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    names = set(packs.view_names)
    stale = [row[0] for row in conn.execute("SELECT name FROM projections") if row[0] not in names]
    conn.executemany("DELETE FROM projections WHERE name = ?", [(n,) for n in stale])
    return dropped
