"""A restore keeps the replaced database's archive with it: compaction of the restored log
never removes or overwrites a segment the replaced one relies on."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify
from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.backup import backup, restore
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_path
from tests.eventlog.test_compact import _event


async def _append(data_dir: Path, events: list[NewEvent]) -> None:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        for start in range(0, len(events), 100):
            await store.append_batch(events[start : start + 100])


async def _bodies(data_dir: Path) -> list[bytes]:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        return [body for _, body in await store.read_raw(0, 100_000)]


async def test_the_replaced_log_stays_whole_after_the_restored_one_compacts(
    data_dir: Path, tmp_path: Path
) -> None:
    """Back up at 300 events, go on to 600 and compact them all, restore the backup, let it
    take 300 other events and compact: the replaced database, put back with the archive
    set aside beside it, still verifies and reads every one of its events."""
    await _append(data_dir, [_event(i) for i in range(300)])
    copy = backup(data_dir, tmp_path / "at-300.db").path
    await _append(data_dir, [_event(i) for i in range(300, 600)])
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    replaced_events = await _bodies(data_dir)
    info = restore(copy, data_dir)
    assert info.replaced is not None
    await _append(data_dir, [_event(i) for i in range(1000, 1300)])
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    assert verify(data_dir).ok
    # put the replaced database back, elsewhere, with the archive kept beside it
    other = tmp_path / "replaced"
    other.mkdir(mode=0o700)
    shutil.copy2(info.replaced, db_path(other))
    kept = info.replaced_archive
    assert kept is not None
    assert kept.name == info.replaced.name.replace(db_path(data_dir).name, "archive")
    shutil.copytree(kept, archive_dir(other))
    report = verify(other)
    assert report.ok, report.findings
    assert await _bodies(other) == replaced_events


async def test_a_restore_that_fails_before_the_swap_leaves_the_archive_in_place(
    data_dir: Path, tmp_path: Path
) -> None:
    """When the database in place cannot be set aside (its set-aside name is taken by a
    directory), the restore fails and that database keeps its archive: it reads whole."""
    await _append(data_dir, [_event(i) for i in range(300)])
    copy = backup(data_dir, tmp_path / "at-300.db").path
    await _append(data_dir, [_event(i) for i in range(300, 600)])
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    before = await _bodies(data_dir)
    now = 1_800_000_000.0
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    taken = data_dir / f"{db_path(data_dir).name}.replaced-{stamp}"
    taken.mkdir()
    (taken / "keep").write_text("x")
    with pytest.raises(IsADirectoryError):
        restore(copy, data_dir, now=now)
    assert not (data_dir / f"archive.replaced-{stamp}").exists()
    report = verify(data_dir)
    assert report.ok, report.findings
    assert await _bodies(data_dir) == before
