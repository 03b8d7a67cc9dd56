"""Online backup of the event log: a consistent copy while the daemon runs.

SQLite's backup API copies the database through a read connection of its
own. Copying every page in one step holds one read transaction for the whole
copy, so the copy is a snapshot of one committed state (WAL readers never
block the daemon's writer, nor it them). The copy is written under a
temporary name beside the destination, checked with ``PRAGMA
integrity_check``, fsynced, and only then renamed into place.

Resource handling: both connections are closed on every path; a failed or
interrupted backup leaves no file at the destination (the temporary file is
removed).

Error handling: a missing database raises ``FileNotFoundError``; an existing
destination raises ``FileExistsError`` unless ``overwrite``; SQLite errors and
a failed integrity check raise :class:`~atlasd.errors.Unavailable` /
:class:`~atlasd.errors.Internal` with the reason.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from atlasd.errors import Internal, Unavailable
from atlasd.eventlog.datadir import db_path
from atlasd.files import create_private

__all__ = ["BackupInfo", "backup", "backup_destination"]


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup wrote."""

    path: Path
    bytes: int
    last_seq: int
    events: int
    seconds: float


def backup_destination(dest: Path, now: float | None = None) -> Path:
    """``dest`` itself, or ``dest/atlasd-YYYYmmdd-HHMMSS.db`` when it is a directory."""
    if dest.is_dir():
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        return dest / f"atlasd-{stamp}.db"
    return dest


def backup(data_dir: Path, dest: Path, *, overwrite: bool = False) -> BackupInfo:
    """Copy ``DATA_DIR/atlasd.db`` to ``dest`` (a file, or a directory to put one in)."""
    started = time.perf_counter()
    source_path = db_path(data_dir)
    if not source_path.is_file():
        raise FileNotFoundError(f"no event log at {source_path}")
    target = backup_destination(dest)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; choose another name or overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.part-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    try:
        os.close(create_private(temp))  # 0600 whatever the umask; SQLite keeps the mode
        _copy(source_path, temp)
        last_seq, events = _check(temp)
        _fsync_file(temp)
        os.replace(temp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return BackupInfo(
        path=target,
        bytes=target.stat().st_size,
        last_seq=last_seq,
        events=events,
        seconds=time.perf_counter() - started,
    )


def _copy(source_path: Path, temp: Path) -> None:
    # Read-only URI: a backup never writes to the live database (no schema
    # creation, no checkpoint); the WAL's shared memory still lets it see
    # everything the daemon committed.
    uri = f"file:{source_path}?mode=ro"
    try:
        source = sqlite3.connect(uri, uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot open {source_path} for backup: {exc}") from exc
    try:
        target = sqlite3.connect(temp)
        try:
            # pages=-1: everything in one step, i.e. in one read transaction.
            source.backup(target, pages=-1)
            # The copy stands alone: no -wal beside it.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise Unavailable(f"backup of {source_path} failed: {exc}") from exc
    finally:
        source.close()


def _check(path: Path) -> tuple[int, int]:
    """Run ``PRAGMA integrity_check`` on the copy; returns (last seq, event count)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        if rows != [("ok",)]:
            problems = "; ".join(str(r[0]) for r in rows[:5])
            raise Internal(f"backup copy failed its integrity check: {problems}")
        try:
            last_seq, events = conn.execute(
                "SELECT coalesce(max(seq), 0), count(*) FROM events"
            ).fetchone()
        except sqlite3.Error:
            # Not an event log (or an empty one without its schema yet).
            return 0, 0
        return int(last_seq), int(events)
    finally:
        conn.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
