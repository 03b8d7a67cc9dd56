"""Bytes on disk per event: the database file (and archive segments) against the
NDJSON export of the same log.

A log of the export test's mix (every view, every third event without
``occurred_at``) is appended, the store closed (WAL checkpointed), and sizes
compared with the export's byte count (one stored body plus a newline per
event, which is what ``atlasd export`` writes). Then the whole log is
compacted and the database and the archive segments are measured again.

Targets: live <= 1.2x the export, archived (segments) <= 0.3x. The live target
is reported, not enforced, until the schema work on it lands.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, StoreConfig
from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_bytes, db_path
from tests.reading.test_export_import import _generated

EVENTS = 50_000
BATCH = 1_000
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


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="atlasd-size-") as root:
        data_dir = Path(root) / "data"
        exported = asyncio.run(_fill(data_dir))
        live = db_bytes(db_path(data_dir))
        report = compact(data_dir, older_than_ms=0, synced_only=False)
        segments = sum(p.stat().st_size for p in archive_dir(data_dir).iterdir())
        after = db_bytes(db_path(data_dir))
    per = 1 / EVENTS
    print(f"{EVENTS:,} events; export {exported * per:.0f} B/event ({exported:,} B)")
    print(f"live database: {live * per:.0f} B/event = {live / exported:.2f}x export")
    print(
        f"after compaction: segments {segments * per:.0f} B/event = {segments / exported:.2f}x"
        f" export; database {after:,} B ({after / exported:.2f}x, views and ids)"
    )
    print(f"compaction: {report.segments} segments in {report.seconds:.2f} s")
    if live / exported > LIVE_TARGET:
        print(f"note: live target {LIVE_TARGET}x not met yet (reported, not enforced)")
    if segments / exported > ARCHIVED_TARGET:
        print(f"MISSED: archived target {ARCHIVED_TARGET}x")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
