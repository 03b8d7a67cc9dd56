"""The SQL floor of a workload: the writer's own statements, replayed with no Python.

A rate measured through the store pays for SQLite and for Python. To know how
far SQLite alone would let a target go, the workload is run once through the
store while every statement the writer thread executes is recorded, with its
parameters and in order; the statements are then replayed on a copy of the
database as it was before the workload, through a bare connection set up as
the store sets up its own (:func:`atlasd.eventlog.sql.connect`, the store's
cache size). The replay's rate is what the store would reach if everything
but SQLite (validation, ids, hashing, the fold, the event loop, the socket)
cost nothing: no Python on top of the same SQL can beat it.

The replay runs without the store's checkpointer thread, so SQLite's own
checkpoints (inside the commits) do all the copying: if anything, a slightly
lower floor than the store's SQL could reach with the thread.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from atlasd.eventlog import EventStore, StoreConfig
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.sql import connect

__all__ = ["Floor", "sql_floor"]

#: The store's writer thread (see ``EventStore.open``): only its statements are the append path's.
_WRITER_THREAD = "atlasd-writer"

Workload = Callable[[EventStore], Awaitable[int]]


class Floor(msgspec.Struct, frozen=True):
    """One workload's SQL: how much of it, and how long it takes alone."""

    events: int
    statements: int
    commits: int
    sql_s: float

    @property
    def sql_rate(self) -> float:
        return self.events / self.sql_s

    def above_us(self, rate: float) -> float:
        """What a store appending at ``rate`` spends per event beyond this SQL, in us."""
        return 1e6 / rate - 1e6 / self.sql_rate


_Call = tuple[bool, str, Any]  # (many, sql, parameters)
_recorded: list[_Call] | None = None


class _Recording(sqlite3.Connection):
    """A connection that notes what the writer thread executes while a recording runs."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        calls = _recorded
        if calls is not None and threading.current_thread().name.startswith(_WRITER_THREAD):
            calls.append((False, sql, parameters))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        calls = _recorded
        if calls is not None and threading.current_thread().name.startswith(_WRITER_THREAD):
            # each row copied: the fold passes its cached rows, which later groups change
            parameters = [copy.copy(row) for row in parameters]
            calls.append((True, sql, parameters))
        return super().executemany(sql, parameters)


@contextlib.contextmanager
def _recording_connections() -> Iterator[None]:
    """Every sqlite3 connection opened meanwhile can record (the store's are opened then)."""
    original = sqlite3.connect

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", _Recording)
        conn: sqlite3.Connection = original(*args, **kwargs)
        return conn

    sqlite3.connect = recording_connect  # type: ignore[assignment]
    try:
        yield
    finally:
        sqlite3.connect = original


def _replay(db: Path, calls: Sequence[_Call], cache_kib: int) -> float:
    conn = connect(db)
    try:
        conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        started = time.perf_counter()
        for many, sql, parameters in calls:
            if many:
                conn.executemany(sql, parameters)
            else:
                conn.execute(sql, parameters).fetchall()
        return time.perf_counter() - started
    finally:
        conn.close()


def _contents(db: Path) -> dict[str, tuple[Any, ...]]:
    """Each table's row count and last row: enough to tell whether a replay wrote what
    the store wrote."""
    conn = connect(db, readonly=True)
    try:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            )
        ]
        return {
            table: (
                conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0],
                conn.execute(f'SELECT * FROM "{table}" ORDER BY 1 DESC LIMIT 1').fetchone(),
            )
            for table in tables
        }
    finally:
        conn.close()


async def sql_floor(
    directory: Path, config: StoreConfig, preload: Workload, workload: Workload
) -> Floor:
    """Run ``preload`` (untimed), then ``workload``, through a store opened with
    ``config``, recording the writer's SQL; replay that SQL on a copy (under
    ``directory``) of the database as ``preload`` left it. The workload's own rate
    is not taken here: recording costs it a little; measure it unrecorded."""
    global _recorded
    data = config.data_dir
    async with await EventStore.open(config) as store:
        await preload(store)
    before = directory / "before"
    shutil.copytree(data, before)
    calls: list[_Call] = []
    with _recording_connections():
        async with await EventStore.open(config) as store:
            _recorded = calls
            try:
                events = await workload(store)
            finally:
                _recorded = None
    sql_s = _replay(db_path(before), calls, config.cache_kib)
    if _contents(db_path(before)) != _contents(db_path(data)):
        raise RuntimeError("the replayed statements did not write what the store wrote")
    shutil.rmtree(before, ignore_errors=True)
    commits = sum(1 for many, sql, _ in calls if not many and sql.lstrip().upper() == "COMMIT")
    return Floor(events, len(calls), commits, sql_s)
