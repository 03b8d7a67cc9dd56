"""The checkpointer copies committed WAL frames into the database beside the writer."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, StoreConfig
from atlasd.eventlog.checkpointer import MIN_GROUP, Checkpointer
from atlasd.eventlog.datadir import db_path


def _rows_in_database_file_alone(db: Path, scratch: Path) -> int:
    """Rows of ``t`` in a copy of the database file without its WAL."""
    scratch.mkdir(exist_ok=True)
    copy = scratch / "alone.db"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()
        shutil.rmtree(scratch)


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _checkpointer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "atlasd-checkpointer"]


def test_committed_frames_reach_the_database_file_while_the_writer_keeps_its_wal(
    tmp_path: Path,
) -> None:
    """A noted commit is copied from the WAL into the database file by the checkpointer,
    while the committing connection has its own checkpoints turned off."""
    db = tmp_path / "x.db"
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table is in the file, no rows
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    assert _rows_in_database_file_alone(db, tmp_path / "before") == 0
    checkpointer = Checkpointer(db, 0.001)
    checkpointer.start()
    try:
        checkpointer.note_commit(MIN_GROUP)
        _wait_for(lambda: checkpointer.passes >= 1)
    finally:
        checkpointer.close()
        writer.close()
    assert _rows_in_database_file_alone(db, tmp_path / "after") == 100


def test_small_groups_and_no_commits_leave_the_checkpointer_idle(tmp_path: Path) -> None:
    """Without a large group noted the checkpointer stays idle (SQLite's own
    checkpoint serves small groups); one large group starts a pass."""
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    checkpointer = Checkpointer(db, 0.001)
    checkpointer.start()
    try:
        for _ in range(20):
            checkpointer.note_commit(MIN_GROUP - 1)
        time.sleep(0.05)
        assert checkpointer.passes == 0
        checkpointer.note_commit(MIN_GROUP)
        _wait_for(lambda: checkpointer.passes == 1)
    finally:
        checkpointer.close()


def test_close_stops_the_thread_and_can_be_repeated(tmp_path: Path) -> None:
    """After close the checkpointer's thread is gone; a second close is a no-op."""
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    checkpointer = Checkpointer(db, 60.0)  # a long interval: close must not wait it out
    checkpointer.start()
    checkpointer.note_commit(MIN_GROUP)
    _wait_for(lambda: checkpointer.passes >= 1)
    started = time.monotonic()
    checkpointer.close()
    checkpointer.close()
    assert time.monotonic() - started < 5
    assert _checkpointer_threads() == []


async def test_a_store_checkpoints_beside_its_writer_and_stops_on_close(data_dir: Path) -> None:
    """Concurrent appends (large groups) are checkpointed from the store's checkpointer;
    closing the store ends its thread."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    try:
        assert store.checkpointer is not None
        await asyncio.gather(
            *(store.append(NewEvent(stream=f"s{i}", type="T", data={"i": i})) for i in range(20))
        )
        checkpointer = store.checkpointer
        _wait_for(lambda: checkpointer.passes >= 1)
    finally:
        await store.close()
    assert _checkpointer_threads() == []
    conn = sqlite3.connect(db_path(data_dir))
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 20
    conn.close()


async def test_a_zero_interval_turns_the_checkpointer_off(data_dir: Path) -> None:
    """``checkpoint_interval_ms=0``: no checkpointer thread; appends still commit."""
    async with await EventStore.open(
        StoreConfig(data_dir=data_dir, checkpoint_interval_ms=0)
    ) as store:
        assert store.checkpointer is None
        assert _checkpointer_threads() == []
        result = await store.append(NewEvent(stream="s", type="T", data={}))
    assert result.seq == 1
