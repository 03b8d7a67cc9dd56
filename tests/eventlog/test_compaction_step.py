"""Whatever a compaction step does, the writer's durability and size cap come back after it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import EventStore, NewEvent, StoreConfig

CAP = 64 * 1024 * 1024
_FULL = 2


def _step_left_open(conn: sqlite3.Connection) -> None:
    """A step whose transaction is still open when it fails (its rollback failed)."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta (key, value) VALUES ('half', 'done')")
    raise Unavailable("the step failed half-way")


def _pragmas(conn: sqlite3.Connection) -> tuple[int, int, bool]:
    synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    pages = int(conn.execute("PRAGMA max_page_count").fetchone()[0])
    return synchronous, pages, conn.in_transaction


async def test_a_step_failing_inside_its_transaction_leaves_full_sync_and_the_cap(
    data_dir: Path,
) -> None:
    """A step that fails with its transaction open raises its own error; nothing of it stays,
    the connection is back at synchronous FULL with the size cap, and appends go on."""
    config = StoreConfig(data_dir=data_dir, max_db_bytes=CAP)
    async with await EventStore.open(config) as store:
        await store.append(NewEvent(stream="s", type="t", data={"n": 1}))
        writer = store._writer
        with pytest.raises(Unavailable, match="half-way"):
            await store._compaction_step(writer._compaction_step, _step_left_open)
        synchronous, pages, open_tx = await store._run(_pragmas, writer.conn)
        assert (synchronous, pages, open_tx) == (_FULL, CAP // 4096, False)
        result = await store.append(NewEvent(stream="s", type="t", data={"n": 2}))
        assert result.seq == 2
        rows = await store._fetch("SELECT count(*) FROM meta WHERE key = 'half'", ())
        assert rows[0][0] == 0


def _step_that_locks_the_sync_level(conn: sqlite3.Connection) -> None:
    """A step after which the connection refuses to change its sync level (SQLite's own
    authorizer denies the PRAGMA), so the writer cannot set FULL back on it."""

    def deny_synchronous(action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_PRAGMA and arg1 == "synchronous":
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.set_authorizer(deny_synchronous)


async def test_a_connection_whose_sync_level_cannot_be_restored_is_replaced(
    data_dir: Path,
) -> None:
    """If FULL cannot be set back after a step, the writer drops that connection and opens a
    fresh one at FULL with the cap: no later append is acknowledged without its fsync."""
    config = StoreConfig(data_dir=data_dir, max_db_bytes=CAP)
    async with await EventStore.open(config) as store:
        await store.append(NewEvent(stream="s", type="t", data={"n": 1}))
        writer = store._writer
        before = writer.conn
        await store._compaction_step(writer._compaction_step, _step_that_locks_the_sync_level)
        assert writer.conn is not before
        synchronous, pages, open_tx = await store._run(_pragmas, writer.conn)
        assert (synchronous, pages, open_tx) == (_FULL, CAP // 4096, False)
        result = await store.append(NewEvent(stream="s", type="t", data={"n": 2}))
        assert result.seq == 2
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as reopened:
        assert [e.data["n"] for e in await reopened.read(0)] == [1, 2]
