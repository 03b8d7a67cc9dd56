"""A replay names an event's id only to the folds that read it, and names it right."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild
from atlasd.eventlog.datadir import db_path
from atlasd.packs.engine import Fold
from atlasd.packs.registry import builtin_packs


def test_only_the_types_whose_fold_reads_the_event_id_are_named(tmp_path: Path) -> None:
    """Of the built-in packs, only ExecutionLogged keys a view by the event's id."""
    conn = sqlite3.connect(tmp_path / "x.db")
    packs = builtin_packs()
    fold = Fold(conn, packs, dict.fromkeys(packs.view_names, 0), fresh=True)
    assert fold.reads_event_id == frozenset({"ExecutionLogged"})
    conn.close()


async def test_a_rebuild_keys_execution_rows_by_their_events_ids(data_dir: Path) -> None:
    """The rows a rebuild folds from the table carry the ids the appends returned."""
    task = {"build_id": "b1", "task_id": "t1"}
    done = {**task, "status": "done"}
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        results = await store.append_batch(
            [
                NewEvent(stream="build:b1", type="BuildStarted", data={"build_id": "b1"}),
                NewEvent(stream="build:b1", type="ExecutionLogged", data={**task, "agent": "A"}),
                NewEvent(stream="build:b1", type="TaskStatusChanged", data=done),
                NewEvent(stream="build:b1", type="ExecutionLogged", data={**task, "agent": "B"}),
            ]
        )
    conn = sqlite3.connect(db_path(data_dir))
    before = sorted(conn.execute("SELECT * FROM view_executions"))
    conn.close()
    rebuild(data_dir)
    conn = sqlite3.connect(db_path(data_dir))
    after = sorted(conn.execute("SELECT * FROM view_executions"))
    conn.close()
    ids = {results[1].event_id, results[3].event_id}
    assert len(after) == 2
    assert after == before
    assert {row[1] for row in after} == ids
