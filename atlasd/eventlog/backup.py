"""Online backup of the event log, and putting a backup back in place.

Backup: a consistent copy while the daemon runs.

SQLite's backup API copies the database through a read connection of its
own. Copying every page in one step holds one read transaction for the whole
copy, so the copy is a snapshot of one committed state (WAL readers never
block the daemon's writer, nor it them). The copy is written under a
temporary name beside the destination, checked with ``PRAGMA
integrity_check``, fsynced, and only then renamed into place.

Resource handling: both connections are closed on every path; a failed or
interrupted backup leaves no file at the destination (the temporary file is
removed).

Restore (:func:`restore`, daemon stopped): the backup is checked, copied
beside the database, re-origined in the copy (:mod:`atlasd.eventlog.lineage`:
the restored log continues under a new origin and syncs again from seq 1),
fsynced, and renamed into place; the database it replaces is first
checkpointed (its WAL folded in) and kept as ``atlasd.db.replaced-STAMP``,
and no ``-wal``/``-shm`` of the old database stays beside the new one.

Archive segments (docs/eventlog.md, "Retention"): a backup of a compacted log
copies the segments its records name into ``BACKUP.archive/`` beside the
backup file (each checked against its record); a restore puts them in a new
``DATA_DIR/archive/``, the replaced database's archive directory kept beside
it as ``archive.replaced-STAMP`` (the restored log's compaction then never
removes or overwrites a segment the replaced database relies on), and
refuses a backup whose segments are missing or altered.

Error handling: a missing database raises ``FileNotFoundError``; an existing
destination raises ``FileExistsError`` unless ``overwrite``; SQLite errors and
a failed integrity check raise :class:`~atlasd.errors.Unavailable` /
:class:`~atlasd.errors.Internal` with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from atlasd.errors import Internal, InvalidValue, Unavailable
from atlasd.eventlog.archive import (
    ARCHIVE_DIR,
    ArchiveRecord,
    archive_dir,
    read_records,
    read_segment,
    segment_bytes,
)
from atlasd.eventlog.datadir import DataDirLock, db_path, ensure_data_dir
from atlasd.eventlog.lineage import reorigin
from atlasd.eventlog.sql import Statements
from atlasd.files import create_private, fsync_dir

__all__ = [
    "BackupInfo",
    "RestoreInfo",
    "backup",
    "backup_destination",
    "restore",
    "segments_of",
]


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
        _copy_segments(_records(temp), archive_dir(data_dir), segments_of(target), now=None)
        _fsync_file(temp)
        os.replace(temp, target)
        fsync_dir(target.parent)
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


def segments_of(backup_file: Path) -> Path:
    """Where the archive segments of a backup file go: ``BACKUP.archive/``."""
    return backup_file.with_name(f"{backup_file.name}.archive")


def _records(path: Path) -> list[ArchiveRecord]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not conn.execute(Statements.has_archives).fetchone():
            return []
        return read_records(conn)
    finally:
        conn.close()


def _copy_segments(
    records: list[ArchiveRecord], source: Path, dest: Path, *, now: float | None
) -> None:
    """Copy the recorded segments from ``source`` to ``dest``, each checked against its
    record first; a different file under the same name in ``dest`` is set aside."""
    if not records:
        return
    dest.mkdir(mode=0o700, exist_ok=True)
    for record in records:
        try:
            blob = segment_bytes(source, record)
            read_segment(source, record)  # it decompresses to its events, too
        except Unavailable as exc:
            raise InvalidValue(f"cannot copy archive segments: {exc.message}") from None
        final = dest / record.file
        if final.exists() or final.is_symlink():
            with contextlib.suppress(Unavailable):
                if segment_bytes(dest, record) == blob:
                    continue
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
            os.replace(final, final.with_name(f"{final.name}.replaced-{stamp}"))
        part = dest / f".{record.file}.part-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        fd = create_private(part)
        try:
            with open(fd, "wb", closefd=False) as out:
                out.write(blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, final)
    fsync_dir(dest)


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
            last_seq, events = conn.execute(Statements.live_counts).fetchone()
        except sqlite3.Error:
            # Not an event log (or an empty one without its schema yet).
            return 0, 0
        with contextlib.suppress(sqlite3.Error):  # a log from before retention has none
            archived_end, archived = conn.execute(Statements.archived_counts).fetchone()
            # rows an interrupted compaction left live are counted once
            overlap = conn.execute(Statements.live_up_to, (archived_end,)).fetchone()[0]
            last_seq = max(int(last_seq), int(archived_end))
            events = int(events) + int(archived) - int(overlap)
        return int(last_seq), int(events)
    finally:
        conn.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class RestoreInfo:
    """What a restore did."""

    path: Path
    last_seq: int
    events: int
    old_origin: str
    new_origin: str
    #: Where the database that was in place went (None: there was none).
    replaced: Path | None
    #: Where its archive directory went (None: there was none).
    replaced_archive: Path | None = None


def restore(source: Path, data_dir: Path, *, now: float | None = None) -> RestoreInfo:
    """Put the backup ``source`` in place as ``DATA_DIR/atlasd.db`` (daemon stopped).

    Raises :class:`Unavailable` while a daemon holds the data dir,
    ``FileNotFoundError`` for a missing backup and :class:`InvalidValue` for a
    file that is not an intact event log.
    """
    if not source.is_file():
        raise FileNotFoundError(f"no backup file at {source}")
    ensure_data_dir(data_dir)
    with DataDirLock(data_dir):
        target = db_path(data_dir)
        temp = target.with_name(f".{target.name}.restore-{os.getpid()}")
        staging = data_dir / f".{ARCHIVE_DIR}.restore-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        replaced_archive: Path | None = None
        old_db_in_place = True
        try:
            _copy(source, temp)
            try:
                last_seq, events = _check(temp)
            except Internal as exc:
                raise InvalidValue(f"{source} is damaged: {exc.message}") from None
            # the backup's segments gather beside the archive, which stays the replaced
            # database's: the restored log's compaction must never remove or overwrite them
            shutil.rmtree(staging, ignore_errors=True)  # an interrupted restore's
            _copy_segments(_records(temp), segments_of(source), staging, now=now)
            old, new = _reorigin_copy(temp, source)
            _fsync_file(temp)
            replaced_archive = _set_aside_archive(data_dir, now)
            replaced = _set_aside(target, now)
            old_db_in_place = False
            if staging.is_dir():
                os.replace(staging, archive_dir(data_dir))
            os.replace(temp, target)
            fsync_dir(data_dir)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            shutil.rmtree(staging, ignore_errors=True)
            if replaced_archive is not None and old_db_in_place:
                # the database stays: so does its archive
                with contextlib.suppress(OSError):
                    os.rename(replaced_archive, archive_dir(data_dir))
            raise
    return RestoreInfo(
        path=target,
        last_seq=last_seq,
        events=events,
        old_origin=old,
        new_origin=new,
        replaced=replaced,
        replaced_archive=replaced_archive,
    )


def _reorigin_copy(temp: Path, source: Path) -> tuple[str, str]:
    conn = sqlite3.connect(temp, isolation_level=None)
    try:
        try:
            has_origin = conn.execute(Statements.get_meta, ("origin",)).fetchone()
        except sqlite3.Error:
            has_origin = None
        if has_origin is None:
            raise InvalidValue(f"{source} is not an atlasd event log (no origin recorded)")
        old, new, _last = reorigin(conn, f"restore of {source.name}")
        return old, new
    finally:
        conn.close()


def _set_aside_archive(data_dir: Path, now: float | None) -> Path | None:
    """Move the archive directory of the database being replaced out of the way, as
    ``archive.replaced-STAMP`` beside ``atlasd.db.replaced-STAMP`` (None: there was none)."""
    directory = archive_dir(data_dir)
    if not directory.exists() and not directory.is_symlink():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    aside = directory.with_name(f"{directory.name}.replaced-{stamp}")
    if aside.exists() or aside.is_symlink():  # a second restore within the same second
        aside = aside.with_name(f"{aside.name}-{os.getpid()}")
    os.rename(directory, aside)
    return aside


def _set_aside(target: Path, now: float | None) -> Path | None:
    """Fold the current database's WAL in, and move it (and any -wal/-shm) out of the way."""
    if not target.exists():
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                target.with_name(target.name + suffix).unlink()
        return None
    # A damaged database (often the reason for a restore) may refuse this; its
    # -wal and -shm then move aside with it, still a set.
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")  # removes the -wal and -shm
        finally:
            conn.close()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    aside = target.with_name(f"{target.name}.replaced-{stamp}")
    os.replace(target, aside)
    for suffix in ("-wal", "-shm"):  # none should be left; a stale one would corrupt the copy
        wal = target.with_name(target.name + suffix)
        if wal.exists():
            os.replace(wal, aside.with_name(aside.name + suffix))
    return aside
