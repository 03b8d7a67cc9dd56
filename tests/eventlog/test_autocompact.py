"""The store compacting while open (as the daemon does): real files, real SIGKILLs."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify
from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.autocompact import Compactor
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.retention import CompactionRule
from tests.eventlog.test_compact import EVENTS, _dump, _event, _fill, _snapshot

EVERYTHING = CompactionRule(older_than_ms=0, synced_only=False, segment_events=100)


async def _compact_online(data_dir: Path, rule: CompactionRule = EVERYTHING) -> None:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await Compactor(store, rule, move_chunk=30).run()


@pytest.mark.parametrize(
    ("step", "nth"),
    [
        ("write_rows", 2),
        ("write_rows+", 2),
        ("record_step", 2),
        ("record_step+", 2),
        ("move_step", 6),
        ("move_step+", 6),
        ("vacuum_step", 1),
        ("vacuum_step+", 1),
    ],
)
async def test_an_online_compaction_killed_at_any_step_loses_nothing(
    data_dir: Path, step: str, nth: int
) -> None:
    """SIGKILL before or after each step of the store's compaction (the 6th move is
    half-way through the 2nd segment) leaves a log that verifies and reads whole, and
    the next online run finishes it."""
    await _fill(data_dir)
    before = await _snapshot(data_dir)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.eventlog.compact_crasher",
        str(data_dir),
        step,
        str(nth),
        "--online",
    )
    assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
    report = verify(data_dir)
    assert report.ok, report.findings
    assert report.events == EVENTS
    assert await _snapshot(data_dir) == before
    await _compact_online(data_dir)
    assert _dump(data_dir, "events") == []
    assert sorted(p.name for p in archive_dir(data_dir).iterdir()) == [
        str(row[5]) for row in _dump(data_dir, "archives")
    ]
    assert verify(data_dir).ok
    assert await _snapshot(data_dir) == before


async def test_reads_stay_whole_while_the_cut_moves(data_dir: Path) -> None:
    """Reads of the whole log, with and without a byte budget, running while segments
    are recorded and rows leave the live table, always get every seq once, in order."""
    await _fill(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        compaction = asyncio.create_task(Compactor(store, EVERYTHING, move_chunk=7).run())
        reads = 0
        while not compaction.done() or reads < 3:
            whole = await store.read_raw(0, 10_000)
            assert [seq for seq, _ in whole] == list(range(1, EVENTS + 1))
            budget = await store.read_raw(0, 10_000, max_bytes=10**9)
            assert [seq for seq, _ in budget] == list(range(1, EVENTS + 1))
            events = await store.read(0, stream="build-3", limit=10_000)
            assert [e.version for e in events] == list(range(1, len(events) + 1))
            reads += 1
        assert (await compaction).archived == EVENTS
        assert store.compaction_step_max_s > 0


async def test_appends_keep_their_versions_and_ids_after_an_online_compaction(
    data_dir: Path,
) -> None:
    """After the store compacts while open, a repeated event_id is a duplicate, stream
    versions go on and so does the chain (verify)."""
    await _fill(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await Compactor(store, EVERYTHING).run()
        again = await store.append(_event(5))
        assert again.duplicate
        assert again.seq == 6
        fresh = await store.append(NewEvent(stream="build-0", type="note.added", data={}))
        assert fresh.seq == EVENTS + 1
        assert fresh.version == EVENTS // 7 + 2
        assert store.last_compaction is not None
        assert store.last_compaction.events == EVENTS
    assert verify(data_dir).ok


async def test_only_synced_events_move_when_sync_is_on(data_dir: Path) -> None:
    """With synced_only the cut stops at the sync cursor, whatever the age rule says."""
    await _fill(data_dir, acked=250)
    rule = CompactionRule(older_than_ms=0, synced_only=True, segment_events=100)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        report = await Compactor(store, rule).run()
    assert report.archived == 250
    assert [row[0] for row in _dump(data_dir, "events")][:1] == [251]


async def test_compaction_makes_room_for_appends_refused_at_the_size_cap(data_dir: Path) -> None:
    """A store at its size cap refuses appends; a compaction (its steps are not held to the
    cap) moves events out and appends are taken again."""
    await _fill(data_dir, 2_000)
    cap = db_path(data_dir).stat().st_size + 64 * 1024
    async with await EventStore.open(StoreConfig(data_dir=data_dir, max_db_bytes=cap)) as store:
        refused = False
        for i in range(2_000, 20_000, 100):
            try:
                await store.append_batch([_event(n) for n in range(i, i + 100)])
            except Unavailable:
                refused = True
                break
        assert refused
        report = await Compactor(store, EVERYTHING).run()
        assert report.archived > 0
        assert report.bytes_freed > 0
        await store.append_batch([_event(n) for n in range(30_000, 30_100)])
    assert verify(data_dir).ok


async def test_a_database_without_incremental_vacuum_is_converted_only_offline(
    data_dir: Path,
) -> None:
    """Online runs on an old-style file move events but do not shrink it (and say so);
    `compact` offline converts it once, after which online runs give pages back."""
    await _fill(data_dir, 300)
    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    conn.close()
    rule = CompactionRule(older_than_ms=0, synced_only=False, segment_events=100)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append_batch([_event(n) for n in range(300, 600)])
        report = await Compactor(store, rule).run()
        assert report.archived == 600
        assert not report.shrinks
        assert report.bytes_freed == 0
    offline = compact(data_dir, older_than_ms=0, synced_only=False)
    assert offline.converted
    conn = sqlite3.connect(db_path(data_dir))
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    conn.close()
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append_batch([_event(n) for n in range(600, 2_000)])
        report = await Compactor(store, rule).run()
        assert report.shrinks
        assert report.bytes_freed > 0


async def test_a_segment_that_cannot_be_written_moves_nothing_and_appends_go_on(
    data_dir: Path,
) -> None:
    """With a file where the archive directory should be, a run fails with unavailable,
    every event stays live, and the store keeps taking appends."""
    await _fill(data_dir, 300)
    archive_dir(data_dir).write_text("not a directory")
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        with pytest.raises(Unavailable, match="cannot write an archive segment"):
            await Compactor(store, EVERYTHING).run()
        assert (await store.append(_event(300))).seq == 301
    assert len(_dump(data_dir, "events")) == 301
    assert _dump(data_dir, "archives") == []
