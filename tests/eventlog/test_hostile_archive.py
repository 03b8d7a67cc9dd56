"""A hostile file in place of an archive segment is refused, never waited on or loaded."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import EventStore, StoreConfig, rebuild, verify
from atlasd.eventlog.archive import ArchiveRecord, archive_dir, read_segment, segment_name
from atlasd.eventlog.backup import backup, restore
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.offline import stored_events
from tests.eventlog.test_compact import _dump, _fill
from tests.support.archive import point_archive_record_at

# a read that answers at all answers in well under this
_PATIENCE_S = 10.0


async def _compacted(data_dir: Path) -> Path:
    """A log of 600 events, the first 500 archived; the first segment's path."""
    await _fill(data_dir)
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    conn = sqlite3.connect(db_path(data_dir))
    try:
        # keep the last 100 live: a read then needs the segments and the table
        first = str(conn.execute("SELECT file FROM archives ORDER BY first_seq").fetchone()[0])
    finally:
        conn.close()
    return archive_dir(data_dir) / first


def _unblock(fifo: Path) -> None:
    """Give a reader stuck on ``fifo`` its end of input (so a failing test ends)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


async def _within_patience(fifo: Path, call: asyncio.Future[object]) -> object:
    try:
        return await asyncio.wait_for(asyncio.shield(call), _PATIENCE_S)
    except TimeoutError:
        _unblock(fifo)
        with contextlib.suppress(Exception):
            await call
        pytest.fail(f"the read waited on the FIFO {fifo.name} for {_PATIENCE_S} s")


async def test_a_fifo_in_place_of_a_segment_fails_a_read_at_once(data_dir: Path) -> None:
    """A FIFO named like a recorded segment makes a read of its range unavailable, at once
    (no writer ever comes), and the store keeps serving the live events."""
    segment = await _compacted(data_dir)
    segment.unlink()
    os.mkfifo(segment, 0o600)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        reading = asyncio.ensure_future(store.read(0, limit=10))
        with pytest.raises(Unavailable, match="not a regular file"):
            await _within_patience(segment, reading)
        live = await store.read(590, limit=100)
        assert [event.seq for event in live] == list(range(591, 601))


async def test_verify_reports_a_fifo_in_place_of_a_segment(data_dir: Path) -> None:
    """``verify`` names a FIFO segment as a finding rather than wait on it forever."""
    segment = await _compacted(data_dir)
    segment.unlink()
    os.mkfifo(segment, 0o600)
    checking = asyncio.ensure_future(asyncio.to_thread(verify, data_dir))
    report = await _within_patience(segment, checking)
    assert not report.ok  # type: ignore[attr-defined]
    assert any(
        "not a regular file" in finding
        for finding in report.findings  # type: ignore[attr-defined]
    )


async def test_a_huge_file_in_place_of_a_segment_is_refused_unread(data_dir: Path) -> None:
    """A 256 MiB (sparse) file named like a recorded segment is refused from its size alone:
    the read fails without taking the file into memory."""
    segment = await _compacted(data_dir)
    with segment.open("r+b") as out:
        out.truncate(256 * 1024 * 1024)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        tracemalloc.start()
        try:
            with pytest.raises(Unavailable, match="does not match its record"):
                await store.read(0, limit=10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


async def test_a_record_naming_a_file_outside_the_archive_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    """A record altered to name another file (a path out of the archive directory) is not
    followed: reads and ``verify`` refuse it, naming the record."""
    await _compacted(data_dir)
    outside = tmp_path / "elsewhere.ndjson.z"
    outside.write_bytes(b"x")
    point_archive_record_at(data_dir, 1, str(outside))
    assert any(str(outside) == row[5] for row in _dump(data_dir, "archives"))
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        with pytest.raises(Unavailable, match="names the file"):
            await store.read(0, limit=10)
    report = verify(data_dir)
    assert not report.ok
    assert any("names the file" in finding for finding in report.findings)


async def test_a_restore_sets_aside_a_fifo_where_a_segment_goes(
    data_dir: Path, tmp_path: Path
) -> None:
    """A FIFO in the target's archive under a backed-up segment's name is set aside, not
    read: the restore completes and the log reads whole."""
    segment = await _compacted(data_dir)
    copy = backup(data_dir, tmp_path / "backup.db").path
    target = tmp_path / "target"
    archive_dir(target).mkdir(parents=True, mode=0o700)
    fifo = archive_dir(target) / segment.name
    os.mkfifo(fifo, 0o600)
    restoring = asyncio.ensure_future(asyncio.to_thread(restore, copy, target))
    await _within_patience(fifo, restoring)
    assert fifo.is_file()
    async with await EventStore.open(StoreConfig(data_dir=target)) as store:
        assert [event.seq for event in await store.read(0, limit=1000)] == list(range(1, 601))


def _export_all(data_dir: Path) -> int:
    return sum(1 for _ in stored_events(data_dir))


@pytest.mark.parametrize("offline", [rebuild, _export_all], ids=["rebuild", "export"])
async def test_rebuild_and_export_fail_at_once_on_a_fifo_segment(
    data_dir: Path, offline: Callable[[Path], object]
) -> None:
    """``rebuild`` and the offline export refuse a FIFO segment as unavailable, at once."""
    segment = await _compacted(data_dir)
    segment.unlink()
    os.mkfifo(segment, 0o600)
    running = asyncio.ensure_future(asyncio.to_thread(offline, data_dir))
    with pytest.raises(Unavailable, match="not a regular file"):
        await _within_patience(segment, running)


def test_a_segment_that_inflates_past_what_its_events_can_hold_is_refused(
    tmp_path: Path,
) -> None:
    """A compressed file matching its record (as one forged with the file would) that
    inflates to 64 MiB for 2 events is refused after a bounded inflation, not unpacked."""
    bomb = zlib.compress(b"\n" * (64 << 20), 9)
    name = segment_name(1, 2)
    (tmp_path / name).write_bytes(bomb)
    record = ArchiveRecord(
        first_seq=1,
        last_seq=2,
        prev_hash="0" * 64,
        last_hash="0" * 64,
        events=2,
        file=name,
        bytes=len(bomb),
        sha256=hashlib.sha256(bomb).hexdigest(),
    )
    tracemalloc.start()
    try:
        with pytest.raises(Unavailable, match="inflates past"):
            read_segment(tmp_path, record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
