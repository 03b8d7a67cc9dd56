"""Retention: compaction into archive segments, on real files."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import sys
import uuid
from pathlib import Path

import pytest

from atlasd.errors import InvalidValue, Unavailable
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild, verify
from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.backup import backup, restore, segments_of
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_path
from tests.eventlog.legacy import write_schema_2

EVENTS = 600


def _event(i: int) -> NewEvent:
    return NewEvent(
        stream=f"build-{i % 7}",
        type="build.started" if i % 7 == 0 else "note.added",
        data={"n": i, "text": "x" * (i % 50), "build_id": f"b{i % 7}"},
        event_id=str(uuid.UUID(int=i + 1)),
    )


async def _fill(data_dir: Path, count: int = EVENTS, *, acked: int | None = None) -> None:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        for start in range(0, count, 100):
            await store.append_batch([_event(i) for i in range(start, min(count, start + 100))])
        if acked is not None:
            await store.sync.mark_synced(acked)


async def _snapshot(data_dir: Path) -> tuple[list[bytes], dict[str, list[dict[str, object]]]]:
    """Every event's stored bytes (seq order) and every view's rows."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        events = [body for _, body in await store.read_raw(0, 100_000)]
        views = {name: await store.query(name, limit=10_000) for name in store.view_specs}
    return events, views


def _dump(data_dir: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path(data_dir))
    try:
        return list(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))
    finally:
        conn.close()


async def test_compaction_moves_old_events_and_everything_reads_the_same(data_dir: Path) -> None:
    """Reads, views, verify and rebuild see the same log after compaction."""
    await _fill(data_dir)
    before = await _snapshot(data_dir)
    report = compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    assert (report.archived, report.segments) == (EVENTS, 3)
    assert _dump(data_dir, "events") == []
    assert len(_dump(data_dir, "archives")) == 3
    assert await _snapshot(data_dir) == before
    assert verify(data_dir).ok, verify(data_dir).findings
    rebuild(data_dir)
    assert await _snapshot(data_dir) == before
    for entry in archive_dir(data_dir).iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600


async def test_appends_after_compaction_continue_the_chain_versions_and_ids(
    data_dir: Path,
) -> None:
    """Seq, stream versions and event-id duplicates carry on past archived events."""
    await _fill(data_dir)
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert store.last_seq == EVENTS
        repeat = await store.append(_event(3))
        assert repeat.duplicate
        assert repeat.seq == 4
        fresh = await store.append(NewEvent(stream="build-3", type="note.added", data={"n": -1}))
        assert fresh.seq == EVENTS + 1
        assert fresh.version == len([i for i in range(EVENTS) if i % 7 == 3]) + 1
        tail = await store.read(EVENTS - 2, limit=10)
        assert [e.seq for e in tail] == [EVENTS - 1, EVENTS, EVENTS + 1]
    assert verify(data_dir).ok, verify(data_dir).findings


async def test_only_synced_and_old_enough_events_move(data_dir: Path) -> None:
    """The sync cursor and the age bound both limit what compaction takes."""
    await _fill(data_dir, acked=250)
    report = compact(data_dir, older_than_ms=0, synced_only=True, segment_events=100)
    assert report.archived == 250
    assert [row[0] for row in _dump(data_dir, "events")][:1] == [251]
    report = compact(data_dir, older_than_ms=3_600_000, synced_only=False)
    assert report.archived == 0
    assert verify(data_dir).ok


async def test_the_database_file_shrinks(data_dir: Path) -> None:
    """Freed pages go back to the file system."""
    await _fill(data_dir, 3000)
    report = compact(data_dir, older_than_ms=0, synced_only=False)
    assert report.db_bytes_after < report.db_bytes_before * 0.6, report


async def test_verify_finds_a_tampered_missing_or_truncated_segment(data_dir: Path) -> None:
    """A segment that differs from its record is reported, naming its seqs."""
    await _fill(data_dir)
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    segments = sorted(archive_dir(data_dir).iterdir())
    original = segments[1].read_bytes()
    segments[1].write_bytes(original[:-10])
    assert any("seqs 251..500" in f for f in verify(data_dir).findings)
    segments[1].unlink()
    assert any("seqs 251..500" in f for f in verify(data_dir).findings)
    segments[1].write_bytes(original)
    assert verify(data_dir).ok


async def test_a_delete_without_an_archive_record_is_still_refused(data_dir: Path) -> None:
    """The trigger lets through only rows a recorded archive covers; records never change."""
    await _fill(data_dir, 10, acked=5)
    compact(data_dir, older_than_ms=0, synced_only=True)
    conn = sqlite3.connect(db_path(data_dir))
    try:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM events WHERE seq = 8")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("UPDATE archives SET last_seq = 9")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM archives")
    finally:
        conn.close()


async def test_a_forged_archive_record_is_found_by_verify(data_dir: Path) -> None:
    """Recording an archive by hand to delete rows leaves a log verify refuses."""
    await _fill(data_dir, 10)
    conn = sqlite3.connect(db_path(data_dir), isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO archives VALUES (3, 4, 'x', 'y', 2, 'seg-forged.ndjson.z', 1, 'z', 0)"
        )
        conn.execute("DELETE FROM events WHERE seq BETWEEN 3 AND 4")
    finally:
        conn.close()
    findings = verify(data_dir).findings
    assert any("seg-forged" in f for f in findings), findings


async def test_compaction_refuses_while_a_daemon_holds_the_data_dir(data_dir: Path) -> None:
    """The data dir's lock keeps compaction away from a running store."""
    from atlasd.eventlog import DataDirLock

    await _fill(data_dir, 10)
    with DataDirLock(data_dir), pytest.raises(Unavailable, match="another atlasd"):
        compact(data_dir, older_than_ms=0, synced_only=False)


async def test_an_orphan_segment_is_removed_and_ignored(data_dir: Path) -> None:
    """A segment file without a record (a crash before step 2) is cleaned up."""
    await _fill(data_dir, 10)
    directory = archive_dir(data_dir)
    directory.mkdir()
    (directory / "seg-000000000001-000000000010.ndjson.z").write_bytes(b"junk")
    report = compact(data_dir, older_than_ms=3_600_000, synced_only=False)
    assert report.orphans_removed == 1
    assert os.listdir(directory) == []
    assert verify(data_dir).ok


@pytest.mark.parametrize(
    "step",
    [
        *("_write", "_write+", "_record", "_record+", "_move", "_move+"),
        *("_delete", "_delete+", "_vacuum", "_vacuum+"),
    ],
)
async def test_a_compaction_killed_at_any_step_loses_nothing(data_dir: Path, step: str) -> None:
    """SIGKILL before or after each step (2nd segment) leaves a log that verifies, holds
    every event, and that the next compaction finishes."""
    await _fill(data_dir)
    before = await _snapshot(data_dir)
    nth = 1 if step.startswith("_vacuum") else 2
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.eventlog.compact_crasher", str(data_dir), step, str(nth)
    )
    assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
    report = verify(data_dir)
    assert report.ok, report.findings
    assert report.events == EVENTS
    assert await _snapshot(data_dir) == before
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=100)
    assert _dump(data_dir, "events") == []
    assert sorted(p.name for p in archive_dir(data_dir).iterdir()) == [
        str(row[5]) for row in _dump(data_dir, "archives")
    ]
    assert verify(data_dir).ok
    assert await _snapshot(data_dir) == before


async def test_backup_and_restore_carry_the_archive_segments(tmp_path: Path) -> None:
    """A backup of a compacted log copies its segments; a restore elsewhere puts them back
    and the restored log verifies with every event."""
    source, target = tmp_path / "source", tmp_path / "target"
    await _fill(source)
    compact(source, older_than_ms=0, synced_only=False, segment_events=250)
    before, _views = await _snapshot(source)
    info = backup(source, tmp_path / "b.db")
    assert info.events == EVENTS
    assert info.last_seq == EVENTS
    assert len(list(segments_of(tmp_path / "b.db").iterdir())) == 3
    restore(tmp_path / "b.db", target)
    report = verify(target)
    assert report.ok, report.findings
    assert report.events == EVENTS
    assert (await _snapshot(target))[0] == before


async def test_a_restore_refuses_a_backup_whose_segments_are_missing(tmp_path: Path) -> None:
    """Without its segments a compacted backup is refused and nothing is put in place."""
    source, target = tmp_path / "source", tmp_path / "target"
    await _fill(source, 100)
    compact(source, older_than_ms=0, synced_only=False)
    backup(source, tmp_path / "b.db")
    for segment in segments_of(tmp_path / "b.db").iterdir():
        segment.unlink()
    with pytest.raises(InvalidValue, match="archive segment"):
        restore(tmp_path / "b.db", target)
    assert not db_path(target).exists()


async def test_reads_across_the_cut_keep_filters_budgets_and_order(data_dir: Path) -> None:
    """Stream and type filters, byte budgets and limits read on from segments into the
    live table with no gap, as the sync worker does after a re-origin."""
    await _fill(data_dir, 400, acked=250)
    compact(data_dir, older_than_ms=0, synced_only=True, segment_events=100)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.reorigin("restore of a test backup")
        first = (await store.read(0, limit=1))[0]
        assert (await store.sync.state()).oldest_pending_ms == first.recorded_at
        seqs = [e.seq for e in await store.read(200, stream="build-3", limit=1000)]
        assert seqs == [s for s in range(201, 401) if (s - 1) % 7 == 3]
        typed = await store.read(0, types=["build.started"], limit=1000)
        assert [e.seq for e in typed] == [s for s in range(1, 401) if (s - 1) % 7 == 0]
        page = await store.read_raw(0, 1000, max_bytes=2_000)
        assert 1 <= len(page) < 250
        assert sum(len(body) for _, body in page) <= 2_000
        assert [seq for seq, _ in page] == list(range(1, len(page) + 1))
        whole = await store.read_raw(240, 20)
        assert [seq for seq, _ in whole] == list(range(241, 261))


async def test_a_schema_1_log_is_migrated_at_open_and_can_then_be_compacted(
    data_dir: Path,
) -> None:
    """A log written before retention gains the archive tables and the covered-delete
    trigger at open, keeps every event, and compacts."""
    await _fill(data_dir, 50)
    before = await _snapshot(data_dir)
    write_schema_2(db_path(data_dir))
    conn = sqlite3.connect(db_path(data_dir), isolation_level=None)
    try:
        for statement in (
            "DROP TRIGGER events_refuse_delete",
            "DROP TRIGGER archives_refuse_update",
            "DROP TRIGGER archives_refuse_delete",
            "DROP TABLE archives",
            "DROP TABLE archived_ids",
            "DROP TABLE archived_streams",
            "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events"
            " BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END",
            "PRAGMA user_version = 1",
        ):
            conn.execute(statement)
    finally:
        conn.close()
    assert _dump(data_dir, "sqlite_master WHERE name = 'archives'") == []
    async with await EventStore.open(StoreConfig(data_dir=data_dir)):
        pass
    assert verify(data_dir).ok
    assert compact(data_dir, older_than_ms=0, synced_only=False).archived == 50
    assert await _snapshot(data_dir) == before
    assert verify(data_dir).ok


async def test_verify_finds_a_delete_trigger_that_was_loosened(data_dir: Path) -> None:
    """Replacing the covered-delete trigger with a weaker one is a finding."""
    await _fill(data_dir, 10)
    conn = sqlite3.connect(db_path(data_dir), isolation_level=None)
    try:
        conn.execute("DROP TRIGGER events_refuse_delete")
        conn.execute(
            "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events WHEN 0"
            " BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END"
        )
    finally:
        conn.close()
    assert "immutability trigger events_refuse_delete was altered" in verify(data_dir).findings
