"""A group whose transaction fails after the views were folded leaves no trace in them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from atlasd.errors import AtlasdError
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify


def _task(task_id: str, status: str) -> NewEvent:
    return NewEvent(
        stream="build:b1",
        type="TaskLogged",
        data={
            "build_id": "b1",
            "task_id": task_id,
            "title": task_id,
            "agent": "coder",
            "status": status,
            "dependencies": [],
            "phase": 1,
        },
    )


def _fail_checkpoints_from(data_dir: Path, seq: int) -> None:
    """Make the commit fail at its last step (the views' checkpoint), after the fold ran."""
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute(
        "CREATE TRIGGER fail_checkpoint BEFORE UPDATE ON projections"
        f" WHEN NEW.checkpoint >= {seq} BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    db.commit()
    db.close()


def _heal(data_dir: Path) -> None:
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute("DROP TRIGGER fail_checkpoint")
    db.commit()
    db.close()


async def test_rows_folded_by_a_failed_group_are_not_trusted_afterwards(data_dir: Path) -> None:
    """After a group fails past its fold, later appends to the same rows succeed and every
    view equals a replay (no row believed stored that was rolled back)."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(
            NewEvent(
                stream="build:b1",
                type="BuildStarted",
                data={"build_id": "b1", "prd_id": "p", "prd_name": "n"},
            )
        )
        await store.append(_task("t1", "running"))
        _fail_checkpoints_from(data_dir, 3)
        with pytest.raises(AtlasdError):
            await store.append_batch([_task("t2", "running"), _task("t1", "done")])
        _heal(data_dir)
        await store.append(_task("t2", "done"))
        await store.append(_task("t1", "failed"))
        tasks = {row["task_id"]: row["status"] for row in await store.query("tasks")}
        [build] = await store.query("builds")
    assert tasks == {"t1": "failed", "t2": "done"}
    assert (build["tasks_total"], build["tasks_done"], build["tasks_failed"]) == (2, 1, 1)
    report = verify(data_dir)
    assert report.ok, report.findings
