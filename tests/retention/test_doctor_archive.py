"""atlasd doctor's archive check, on real compacted data dirs."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.compact import compact
from atlasd.eventlog.datadir import db_path
from tests.eventlog.test_compact import _fill
from tests.ops.test_doctor import doctor
from tests.support.archive import point_archive_record_at


@pytest.fixture
def compacted() -> Iterator[Path]:
    """A data dir of 600 events, all of them archived in 3 segments."""
    root = Path(tempfile.mkdtemp(prefix="ad-", dir="/tmp"))
    data_dir = root / "data"
    asyncio.run(_fill(data_dir))
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=250)
    yield data_dir
    shutil.rmtree(root, ignore_errors=True)


def _archive_checks(data_dir: Path, **env: str) -> list[dict[str, str]]:
    _code, checks = doctor(
        {"ATLASD_DATA_DIR": str(data_dir), "ATLASD_SOCKET": str(data_dir / "no.sock"), **env}
    )
    return [check for check in checks if check["name"] == "archive"]


def test_a_healthy_archive_passes_with_its_segment_count(compacted: Path) -> None:
    """Private directory, every segment present with its recorded checksum: ok."""
    (check,) = _archive_checks(compacted)
    assert check["level"] == "ok"
    assert check["message"].startswith("3 segments")


def test_an_altered_or_missing_segment_fails_naming_it(compacted: Path) -> None:
    """A segment whose bytes changed, and one that is gone, each fail with its file."""
    first, second = sorted(archive_dir(compacted).iterdir())[:2]
    with first.open("r+b") as fh:
        fh.seek(10)
        fh.write(b"\xff\xff")
    second.unlink()
    checks = _archive_checks(compacted)
    failed = [c["message"] for c in checks if c["level"] == "fail"]
    assert any(first.name in m and "does not match its record" in m for m in failed)
    assert any(second.name in m and "No such file" in m for m in failed)


def test_an_archive_open_to_others_fails_and_a_readable_segment_fails(compacted: Path) -> None:
    """A world-writable archive directory fails; so does a segment readable by others."""
    directory = archive_dir(compacted)
    os.chmod(directory, 0o777)
    segment = sorted(directory.iterdir())[0]
    os.chmod(segment, 0o644)
    failed = [c["message"] for c in _archive_checks(compacted) if c["level"] == "fail"]
    assert any("mode 0777" in m for m in failed)
    assert any(segment.name in m and "mode 0644" in m for m in failed)


def test_a_symlinked_segment_fails(compacted: Path) -> None:
    """A recorded segment replaced by a symlink (to an identical copy) is not trusted."""
    segment = sorted(archive_dir(compacted).iterdir())[0]
    copy = compacted.parent / "copy"
    shutil.copy(segment, copy)
    segment.unlink()
    segment.symlink_to(copy)
    failed = [c["message"] for c in _archive_checks(compacted) if c["level"] == "fail"]
    assert any(segment.name in m and "not a plain file" in m for m in failed)


def test_a_database_without_incremental_vacuum_warns_when_retention_is_on(
    compacted: Path,
) -> None:
    """With retention set, a file that cannot shrink in steps is a warning naming the fix."""
    conn = sqlite3.connect(db_path(compacted))
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    conn.close()
    assert [c["level"] for c in _archive_checks(compacted)] == ["ok"]
    config = compacted.parent / "atlasd.toml"
    config.write_text("[retention]\narchive_after_days = 30\n")
    checks = _archive_checks(compacted, ATLASD_CONFIG=str(config))
    warned = [c for c in checks if c["level"] == "warn"]
    assert len(warned) == 1
    assert "atlasd compact" in warned[0]["fix"]


def test_a_record_naming_a_file_out_of_the_archive_fails_unread(
    compacted: Path, tmp_path: Path
) -> None:
    """A record altered to name another file (an absolute path elsewhere) fails as such:
    doctor does not follow it to the other file."""
    outside = tmp_path / "elsewhere"
    outside.write_bytes(b"x")
    outside.chmod(0o600)
    point_archive_record_at(compacted, 1, str(outside))
    failed = [c["message"] for c in _archive_checks(compacted) if c["level"] == "fail"]
    assert any("names the file" in m for m in failed), failed
    assert not any(str(outside) in m and "does not match" in m for m in failed)
