"""The five views' tables: columns in contract order, their kinds, keys and indexes.

Each table has a hidden ``row_seq`` (the seq of the event that created the row):
the rowid, which gives ``query`` its creation order for free. Value columns are
declared without a type so SQLite keeps numbers exactly as given (an integer
stays an integer); booleans are stored as 0/1 and string lists as JSON text.
"""

from __future__ import annotations

import sqlite3
from typing import Literal, NamedTuple

__all__ = [
    "VIEWS",
    "VIEW_SPECS",
    "ColumnKind",
    "ViewSpec",
    "create_view_tables",
    "drop_view_tables",
    "time_columns",
]

ColumnKind = Literal["str", "num", "bool", "list", "int"]


class ViewSpec(NamedTuple):
    name: str
    #: Bump when the view's rules or table change: the view is then rebuilt on open.
    version: int
    table: str
    key: tuple[str, ...]
    #: Output columns in the contract's order, with their kinds.
    columns: tuple[tuple[str, ColumnKind], ...]
    indexes: tuple[tuple[str, ...], ...]
    #: Extra tables the view owns (besides ``table``).
    extra_ddl: tuple[str, ...] = ()
    extra_tables: tuple[str, ...] = ()


VIEW_SPECS: dict[str, ViewSpec] = {
    spec.name: spec
    for spec in (
        ViewSpec(
            "builds",
            2,
            "view_builds",
            ("build_id",),
            (
                ("build_id", "str"),
                ("prd_id", "str"),
                ("prd_name", "str"),
                ("status", "str"),
                ("error", "str"),
                ("started_at", "int"),
                ("completed_at", "int"),
                ("tasks_total", "int"),
                ("tasks_done", "int"),
                ("tasks_failed", "int"),
            ),
            (("status",),),
        ),
        ViewSpec(
            "tasks",
            2,
            "view_tasks",
            ("build_id", "task_id"),
            (
                ("build_id", "str"),
                ("task_id", "str"),
                ("title", "str"),
                ("agent", "str"),
                ("status", "str"),
                ("dependencies", "list"),
                ("phase", "num"),
                ("attempts", "int"),
                ("error", "str"),
                ("created_at", "int"),
                ("updated_at", "int"),
            ),
            (("status",),),
        ),
        ViewSpec(
            "executions",
            2,
            "view_executions",
            ("event_id",),
            (
                ("event_id", "str"),
                ("build_id", "str"),
                ("task_id", "str"),
                ("agent", "str"),
                ("model", "str"),
                ("gates_passed", "bool"),
                ("duration_ms", "num"),
                ("error", "str"),
                ("recorded_at", "int"),
            ),
            (("build_id", "task_id"),),
        ),
        ViewSpec(
            "patterns",
            2,
            "view_patterns",
            ("pattern_id",),
            (
                ("pattern_id", "str"),
                ("name", "str"),
                ("description", "str"),
                ("code", "str"),
                ("language", "str"),
                ("tags", "list"),
                ("created_at", "int"),
            ),
            (("language",),),
            (
                "CREATE TABLE IF NOT EXISTS view_pattern_tags ("
                " tag TEXT NOT NULL, row_seq INTEGER NOT NULL,"
                " PRIMARY KEY (tag, row_seq)) WITHOUT ROWID",
                "CREATE INDEX IF NOT EXISTS view_pattern_tags_row ON view_pattern_tags (row_seq)",
            ),
            ("view_pattern_tags",),
        ),
        ViewSpec(
            "learnings",
            2,
            "view_learnings",
            ("learning_id",),
            (
                ("learning_id", "str"),
                ("insight", "str"),
                ("category", "str"),
                ("build_id", "str"),
                ("task_id", "str"),
                ("pattern_id", "str"),
                ("recorded_at", "int"),
            ),
            (("category",), ("build_id",), ("pattern_id",)),
        ),
    )
}

#: The view names ``query`` accepts, in contract order.
VIEWS: tuple[str, ...] = tuple(VIEW_SPECS)


def time_columns(spec: ViewSpec) -> tuple[str, ...]:
    """A view's time columns (integer ms columns named ``*_at``), main one first."""
    return tuple(name for name, kind in spec.columns if kind == "int" and name.endswith("_at"))


def _order_indexes(spec: ViewSpec) -> tuple[tuple[str, ...], ...]:
    """One index per column ``query`` may order by that no other index leads with, so
    that a page costs the same at any depth (each index ends in the rowid, row_seq,
    which breaks ties)."""
    leading = {index[0] for index in spec.indexes if len(index) == 1}
    if len(spec.key) == 1:
        leading.add(spec.key[0])  # its UNIQUE index orders by it, and it has no ties
    extra = [*spec.key, *time_columns(spec)]
    return tuple((name,) for name in dict.fromkeys(extra) if name not in leading)


def _table_ddl(spec: ViewSpec, indexes: bool) -> list[str]:
    cols = ["row_seq INTEGER PRIMARY KEY"]
    for name, _kind in spec.columns:
        cols.append(f"{name} TEXT NOT NULL" if name in spec.key else name)
    cols.append(f"UNIQUE ({', '.join(spec.key)})")
    ddl = [f"CREATE TABLE IF NOT EXISTS {spec.table} ({', '.join(cols)})"]
    for index in (*spec.indexes, *_order_indexes(spec)) if indexes else ():
        ddl.append(
            f"CREATE INDEX IF NOT EXISTS {spec.table}_{'_'.join(index)}"
            f" ON {spec.table} ({', '.join(index)})"
        )
    ddl.extend(spec.extra_ddl)
    return ddl


def create_view_tables(
    conn: sqlite3.Connection, names: tuple[str, ...] = VIEWS, *, indexes: bool = True
) -> None:
    """Create the views' tables that do not exist (and their indexes unless told not to)."""
    for name in names:
        for statement in _table_ddl(VIEW_SPECS[name], indexes):
            conn.execute(statement)


def drop_view_tables(conn: sqlite3.Connection, names: tuple[str, ...]) -> None:
    for name in names:
        spec = VIEW_SPECS[name]
        for table in (spec.table, *spec.extra_tables):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
