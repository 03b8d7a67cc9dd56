"""A fold's flush writes only the cells that changed, and the views stay what a replay gives."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.sql import connect
from atlasd.packs.engine import Fold
from atlasd.packs.registry import builtin_packs


@pytest.fixture
async def conn(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A store's database with its view tables, opened directly (the store is closed)."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)):
        pass
    opened = connect(db_path(data_dir))
    try:
        yield opened
    finally:
        opened.close()


def fold_of(conn: sqlite3.Connection) -> Fold:
    packs = builtin_packs()
    return Fold(conn, packs, dict.fromkeys(packs.view_names, 0), keep_rows=1000)


def writes(conn: sqlite3.Connection, fold: Fold) -> list[str]:
    """The statements one flush runs against the view tables."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        conn.execute("BEGIN")
        fold.flush()
        conn.execute("COMMIT")
    finally:
        conn.set_trace_callback(None)
    return [sql for sql in seen if sql.startswith(("INSERT", "UPDATE", "DELETE"))]


def task(seq: int, status: str, event_type: str = "TaskStatusChanged") -> tuple[object, ...]:
    data = {"build_id": "b1", "task_id": "t1", "status": status}
    return (seq, f"e{seq}", event_type, data, 1_000)


def test_a_status_change_updates_only_the_cells_it_changed(conn: sqlite3.Connection) -> None:
    """After a task's status changes, the UPDATEs name the changed columns alone: the task's
    status and attempts, the build's counts; never its key or creation time."""
    fold = fold_of(conn)
    fold.apply_many([task(1, "pending", "TaskLogged")])  # type: ignore[list-item]
    writes(conn, fold)
    fold.apply_many([task(2, "running")])  # type: ignore[list-item]
    updates = [sql for sql in writes(conn, fold) if sql.startswith("UPDATE")]
    tasks = next(sql for sql in updates if "view_tasks" in sql)
    assert '"status"' in tasks
    assert '"created_at"' not in tasks
    assert '"title"' not in tasks
    builds = [sql for sql in updates if "view_builds" in sql]
    assert all('"prd_id"' not in sql and '"status"' not in sql for sql in builds)
    row = conn.execute('SELECT "status", "attempts" FROM view_tasks').fetchone()
    assert row == ("running", 1)


def test_a_row_no_event_changed_is_not_written(conn: sqlite3.Connection) -> None:
    """A repeated status change at the same moment leaves the row as it is: no UPDATE."""
    fold = fold_of(conn)
    fold.apply_many([task(1, "running", "TaskLogged")])  # type: ignore[list-item]
    writes(conn, fold)
    fold.apply_many([(2, "e2", "BuildStarted", {"build_id": "b1"}, 1_000)])
    first = writes(conn, fold)
    fold.apply_many([(3, "e3", "BuildStarted", {"build_id": "b1"}, 1_000)])
    assert any("view_builds" in sql for sql in first)
    assert writes(conn, fold) == []


async def test_a_value_equal_in_python_but_not_in_json_is_written(data_dir: Path) -> None:
    """1 then true, [1] then [true]: each later value is stored (Python calls them equal)."""
    config = StoreConfig(data_dir=data_dir)
    job = {"job_id": "j1"}
    async with await EventStore.open(config) as store:
        await store.append(
            NewEvent(stream="agent_job:j1", type="AgentJobStarted", data={**job, "agent": "a"})
        )
        results = []
        for result in (1, True, [1], [True]):
            await store.append(
                NewEvent(
                    stream="agent_job:j1",
                    type="AgentJobFinished",
                    data={**job, "status": "completed", "result": result},
                ),
                recorded_at=5_000,
            )
            (row,) = await store.query("agent_jobs")
            results.append(row["result"])
    assert results == [1, True, [1], [True]]
    assert [type(r) for r in results[:2]] == [int, bool]
    report = rebuild(data_dir)
    assert report.events == 5
    async with await EventStore.open(config) as store:
        (row,) = await store.query("agent_jobs")
    assert row["result"] == [True]
    assert type(row["result"][0]) is bool


async def test_a_value_changed_in_place_by_the_caller_is_written(data_dir: Path) -> None:
    """An in-process caller that appends, changes its data's list in place and appends it
    again gets the view a replay gives: the fold keeps no reference to the caller's
    values, so neither a skipped write nor an earlier event's value changed after it."""
    tags = ["a"]
    data = {"asset_id": "x", "name": "n", "category": "c", "tags": tags}
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(NewEvent(stream="asset:x", type="AssetSaved", data=data))
        tags.append("b")
        await store.append(NewEvent(stream="asset:x", type="AssetSaved", data=data))
        tags.append("c")  # after its last event: the view must not follow
        await store.append(NewEvent(stream="asset:x", type="AssetDownloaded", data=data))
        inline = await store.query("assets")
        events = await store.read(0)
    assert [event.data["tags"] for event in events] == [["a"], ["a", "b"], ["a", "b", "c"]]
    rebuild(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        replayed = await store.query("assets")
    assert inline == replayed
    assert inline[0]["tags"] == ["a", "b"]
    assert inline[0]["downloads"] == 1
