"""Schema 3's events layout: the stored event rebuilt byte for byte from its row, and the
migration of a schema 2 data dir (text ids and hashes, whole bodies) keeping every event,
the chain and the views."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify
from atlasd.eventlog.chain import GENESIS_HASH, seal
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.offline import stored_events
from atlasd.eventlog.rows import body_of, event_id_text, stored_row
from atlasd.eventlog.sql import SCHEMA_VERSION, Statements, connect, migrate
from tests.eventlog.legacy import write_schema_2
from tests.reading.test_export_import import _generated

# streams and data that need JSON escapes or are not ASCII
_AWKWARD: list[dict[str, Any]] = [
    {"stream": 'quote"d\\back', "type": "note.added", "data": {"s": 'a"b\\c\n\u2028'}},
    {"stream": "bâtiment-ü-日本", "type": "note.added", "data": {"data": {"x": 1.5}}},
    {"stream": "s", "type": "a.b:c-d_e", "data": {',"data":': "tricky", "z": [None, True]}},
]


def _awkward_events() -> list[NewEvent]:
    return [NewEvent(**item) for item in _AWKWARD]


@pytest.mark.parametrize("item", _AWKWARD)
def test_a_sealed_event_is_rebuilt_byte_for_byte_from_its_row(
    item: dict[str, Any], tmp_path: Path
) -> None:
    """The row stored for a sealed event rebuilds exactly the sealed bytes, and SQL
    knows its length without building it (read_raw's byte budget)."""
    event_id = str(uuid.uuid4())
    digest, body = seal(
        GENESIS_HASH, 12345, event_id, item["stream"], 7, item["type"], item["data"],
        {"k": "v"}, 1_700_000_000_000, 1_600_000_000_000, str(uuid.uuid4()),
    )  # fmt: skip
    row = stored_row(12345, event_id, item["stream"], 7, item["type"], 1, digest, body)
    seq, raw_id, stream, version, event_type, _at, raw_hash, payload = row
    assert (len(raw_id), len(raw_hash)) == (16, 32)
    assert event_id_text(raw_id) == event_id
    assert body_of(seq, raw_id, stream, version, event_type, raw_hash, payload) == body
    conn = connect(tmp_path / "t.db")
    migrate(conn)
    conn.execute(Statements.insert_event, row)
    assert conn.execute(f"SELECT {Statements.read_sizes} FROM events").fetchall() == [
        (12345, len(body))
    ]
    conn.close()
    assert b'"seq"' not in payload
    assert digest.encode() not in payload


async def _fill(data_dir: Path) -> None:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append_batch([NewEvent(**_generated(i)) for i in range(400)])
        await store.append_batch(_awkward_events())
        await store.append_batch([NewEvent(**_generated(i)) for i in range(400, 600)])


async def _snapshot(data_dir: Path) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        events = await store.read_raw(0, 100_000)
        views = {name: await store.query(name, limit=10_000) for name in store.view_specs}
    return events, views


def _schema(data_dir: Path) -> tuple[int, list[str]]:
    conn = sqlite3.connect(db_path(data_dir))
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        columns = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    finally:
        conn.close()
    return version, columns


async def test_a_schema_2_data_dir_keeps_every_event_the_chain_and_the_views(
    data_dir: Path,
) -> None:
    """Opening a data dir written in schema 2's layout migrates it: every stored event
    reads back with the same bytes, views are unchanged, verify passes, and appends go
    on with ids, versions and the chain of the old log."""
    await _fill(data_dir)
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=100)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append_batch([NewEvent(**_generated(i)) for i in range(600, 700)])
    before = await _snapshot(data_dir)
    write_schema_2(db_path(data_dir))
    assert _schema(data_dir) == (2, [*["seq", "event_id", "stream", "version", "type"],
                                     "recorded_at", "hash", "body"])  # fmt: skip
    assert await _snapshot(data_dir) == before  # opens (and migrates) first
    version, columns = _schema(data_dir)
    assert (version, columns[-1]) == (SCHEMA_VERSION, "payload")
    report = verify(data_dir)
    assert report.ok, report.findings
    assert report.events == len(before[0]) == 703
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        [last] = await store.read(from_seq=702)
        again = await store.append(
            NewEvent(stream=last.stream, type=last.type, data=last.data, event_id=last.event_id)
        )
        more = await store.append(
            NewEvent(stream=last.stream, type="note.added", data={}, expected_version=last.version)
        )
    assert (again.duplicate, again.seq) == (True, 703)
    assert (more.seq, more.version) == (704, last.version + 1)
    assert verify(data_dir).ok


async def test_a_schema_2_row_that_disagrees_with_its_body_stops_the_migration(
    data_dir: Path,
) -> None:
    """A schema 2 row whose columns do not rebuild its body is named, and the database
    is left at schema 2 with every row as it was."""
    await _fill(data_dir)
    write_schema_2(db_path(data_dir))
    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("DROP TRIGGER events_refuse_update")
    conn.execute("UPDATE events SET stream = 'other' WHERE seq = 9")
    conn.commit()
    rows = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    conn.close()
    with pytest.raises(Unavailable, match="seq 9: the stored event disagrees with its columns"):
        await EventStore.open(StoreConfig(data_dir=data_dir))
    assert _schema(data_dir)[0] == 2
    conn = sqlite3.connect(db_path(data_dir))
    assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == rows
    conn.close()


async def test_reading_a_schema_2_data_dir_offline_asks_for_a_migration_first(
    data_dir: Path,
) -> None:
    """The read-only offline export cannot migrate: it refuses a schema 2 database with
    what to do, and the file stays at schema 2."""
    await _fill(data_dir)
    write_schema_2(db_path(data_dir))
    with pytest.raises(Unavailable, match=f"schema 2, this atlasd reads {SCHEMA_VERSION}: start"):
        list(stored_events(data_dir))
    assert _schema(data_dir)[0] == 2


async def test_the_migration_holds_a_bounded_share_of_the_table_in_memory(
    data_dir: Path,
) -> None:
    """Events near the size limit are moved a bounded number of bytes at a time: the
    migration's peak Python memory stays well under the table it rewrites."""
    pad = "x" * 900_000
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        for i in range(40):
            await store.append(NewEvent(stream="s", type="note.added", data={"i": i, "p": pad}))
    write_schema_2(db_path(data_dir))
    conn = connect(db_path(data_dir))
    try:
        table = int(conn.execute("SELECT sum(length(body)) FROM events").fetchone()[0])
        tracemalloc.start()
        try:
            migrate(conn)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert int(conn.execute("SELECT count(*) FROM events").fetchone()[0]) == 40
    finally:
        conn.close()
    assert table > 36_000_000
    assert peak < table // 2, f"peak {peak} bytes for a table of {table}"
    assert verify(data_dir).ok


@pytest.mark.parametrize(
    "alteration",
    ["body = CAST(body AS TEXT)", "event_id = x'0102'", "hash = CAST(hash AS BLOB) || x'00'"],
)
async def test_a_schema_2_column_of_another_type_stops_the_migration_as_unavailable(
    data_dir: Path, alteration: str
) -> None:
    """A row altered by hand into other column types is named like any row that does not
    round-trip, not raised as a Python error from the start-up."""
    await _fill(data_dir)
    write_schema_2(db_path(data_dir))
    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("DROP TRIGGER events_refuse_update")
    conn.execute(f"UPDATE events SET {alteration} WHERE seq = 9")
    conn.commit()
    conn.close()
    with pytest.raises(Unavailable, match="seq 9: the stored event disagrees with its columns"):
        await EventStore.open(StoreConfig(data_dir=data_dir))
    assert _schema(data_dir)[0] == 2


async def test_the_migration_leaves_no_full_wal_behind_while_the_store_runs(
    data_dir: Path,
) -> None:
    """Every page the rewrite wrote passed through the WAL; once it committed the WAL
    file is emptied, not kept at the database's size for as long as the daemon runs."""
    await _fill(data_dir)
    write_schema_2(db_path(data_dir))
    wal = db_path(data_dir).with_name(db_path(data_dir).name + "-wal")
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert store.last_seq == 603
        assert wal.stat().st_size < 16 * 4096


# Runs in the child: opens the store (which migrates) and dies by SIGKILL as it is about
# to rebuild row N, with earlier chunks already copied into the new table.
_DIE_MID_MIGRATION = """
import asyncio, os, signal, sys
from pathlib import Path
from atlasd.eventlog import EventStore, StoreConfig, sql
nth, calls, original = int(sys.argv[2]), [0], sql.stored_row
def dying(*args):
    calls[0] += 1
    if calls[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args)
sql.stored_row = dying
asyncio.run(EventStore.open(StoreConfig(data_dir=Path(sys.argv[1]))))
"""


async def test_a_migration_killed_mid_way_leaves_schema_2_whole_and_migrates_next_time(
    data_dir: Path,
) -> None:
    """SIGKILL after two chunks were copied: the database is schema 2 with every row as
    it was and no half-built table; the next open migrates it and verify passes."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        for start in range(0, 12_000, 2_000):
            await store.append_batch(
                [NewEvent(**_generated(i)) for i in range(start, start + 2_000)]
            )
    write_schema_2(db_path(data_dir))
    conn = sqlite3.connect(db_path(data_dir))
    rows = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    conn.close()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DIE_MID_MIGRATION, str(data_dir), "11000"
    )
    assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
    conn = sqlite3.connect(db_path(data_dir))
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == rows
    conn.close()
    assert _schema(data_dir)[0] == 2
    assert "events_compact" not in tables
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert store.last_seq == 12_000
    report = verify(data_dir)
    assert report.ok, report.findings
    assert report.events == 12_000


async def test_a_migration_that_another_connection_finished_first_is_skipped(
    data_dir: Path,
) -> None:
    """Two openers read schema 2; the second waits for the first's write lock, then
    finds schema 3 and leaves it alone, rather than failing on the old table's columns."""
    await _fill(data_dir)
    write_schema_2(db_path(data_dir))
    first, second = connect(db_path(data_dir)), connect(db_path(data_dir))
    try:
        first.execute("BEGIN IMMEDIATE")  # holds the write lock while `second` starts
        waiting = asyncio.create_task(asyncio.to_thread(migrate, second))
        await asyncio.sleep(0.5)  # `second` read schema 2 and waits for the lock
        assert not waiting.done()
        first.execute("COMMIT")
        assert migrate(first) == 2
        assert await asyncio.wait_for(waiting, 30) in (2, 3)
    finally:
        first.close()
        second.close()
    assert _schema(data_dir)[0] == SCHEMA_VERSION
    assert verify(data_dir).ok
