"""Bytes on disk per event: the database file (and archive segments) against the
NDJSON export of the same log.

A log of the export test's mix (every view, every third event without
``occurred_at``) is appended, the store closed (WAL checkpointed), and sizes
compared with the export's byte count (one stored body plus a newline per
event, which is what ``atlasd export`` writes). Then the whole log is
compacted and the database and the archive segments are measured again.

Also reported: the WAL pages one group of 64 appends to 64 different streams
(builds spread over the whole log) writes, the pages a COMMIT has to sync.

Targets: live <= 1.2x the export, archived (segments) <= 0.3x.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, StoreConfig
from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_bytes, db_path
from tests.reading.test_export_import import _generated

EVENTS = 50_000
BATCH = 1_000
GROUP = 64
GROUPS = 10
ARCHIVED_TARGET = 0.3
LIVE_TARGET = 1.2


async def _fill(data_dir: Path) -> int:
    """Append the log; returns the export's size in bytes."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        for start in range(0, EVENTS, BATCH):
            await store.append_batch(
                [NewEvent(**_generated(i)) for i in range(start, start + BATCH)]
            )
        exported = 0
        cursor = 0
        while rows := await store.read_raw(cursor, 10_000):
            exported += sum(len(body) + 1 for _, body in rows)
            cursor = rows[-1][0]
    return exported


def _btrees(path: Path) -> tuple[dict[int, str], Counter[str]]:
    """Each page's table or index, and how many pages each one has."""
    conn = sqlite3.connect(path)
    try:
        owner: dict[int, str] = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    finally:
        conn.close()
    return owner, Counter(owner.values())


async def _wal_pages(data_dir: Path) -> tuple[float, Counter[str]]:
    """WAL frames a group of GROUP task updates, each to another build, writes (mean of
    GROUPS groups), and which tables and indexes they belong to."""
    path = db_path(data_dir)
    owner, _pages = _btrees(path)
    spread = EVENTS // 50 // GROUP  # _generated: 50 events per build, task updates at 5k + 2
    frames = 0
    where: Counter[str] = Counter()
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            size = int(other.execute("PRAGMA page_size").fetchone()[0])
            for g in range(GROUPS):
                events = [NewEvent(**_generated((k * spread + g) * 50 + 2)) for k in range(GROUP)]
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                await store.append_batch(events)
                wal = path.with_name(path.name + "-wal").read_bytes()
                numbers = [
                    int.from_bytes(wal[at : at + 4], "big")
                    for at in range(32, len(wal) - 23, size + 24)
                ]
                frames += len(numbers)
                where.update(owner.get(n, "(new page)") for n in numbers)
        finally:
            other.close()
    return frames / GROUPS, where


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="atlasd-size-") as root:
        data_dir = Path(root) / "data"
        exported = asyncio.run(_fill(data_dir))
        live = db_bytes(db_path(data_dir))
        _owner, pages_of = _btrees(db_path(data_dir))
        shutil.copytree(data_dir, Path(root) / "wal")
        frames, frames_of = asyncio.run(_wal_pages(Path(root) / "wal"))
        report = compact(data_dir, older_than_ms=0, synced_only=False)
        segments = sum(p.stat().st_size for p in archive_dir(data_dir).iterdir())
        after = db_bytes(db_path(data_dir))
    per = 1 / EVENTS
    print(f"{EVENTS:,} events; export {exported * per:.0f} B/event ({exported:,} B)")
    print(f"live database: {live * per:.0f} B/event = {live / exported:.2f}x export")
    page = live / max(1, sum(pages_of.values()))
    top = ", ".join(f"{name} {n * page * per:.0f}" for name, n in pages_of.most_common(6))
    print(f"  B/event by table and index: {top}")
    print(
        f"after compaction: segments {segments * per:.0f} B/event = {segments / exported:.2f}x"
        f" export; database {after:,} B ({after / exported:.2f}x, views and ids)"
    )
    print(f"compaction: {report.segments} segments in {report.seconds:.2f} s")
    print(f"WAL pages per group of {GROUP} appends to {GROUP} streams: {frames:.0f}")
    top = ", ".join(f"{name} {n / GROUPS:.0f}" for name, n in frames_of.most_common(6))
    print(f"  by table and index: {top}")
    missed = 0
    if live / exported > LIVE_TARGET:
        print(f"MISSED: live target {LIVE_TARGET}x")
        missed = 1
    if segments / exported > ARCHIVED_TARGET:
        print(f"MISSED: archived target {ARCHIVED_TARGET}x")
        missed = 1
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
