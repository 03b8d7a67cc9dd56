"""``compact``: move old events out of the live table into archive segments.

Runs with the daemon stopped (it takes the data dir's lock). Which events may
move: a prefix of the log, in seq order, every one of them

- older than ``older_than_ms`` (by ``recorded_at``),
- synced, when ``synced_only`` (seq <= the sync cursor; after a re-origin the
  cursor is back at 0, so nothing moves until the log has been sent again),
- before the first quarantined event (a retry reads the event back).

Each segment goes through four steps, each durable before the next, so a
crash anywhere loses nothing and the next run finishes or cleans up:

1. the segment file is written (temporary name, fsync, rename, fsync dir);
   a crash here leaves an unrecorded file: an orphan, ignored by readers and
   removed by the next run;
2. its record (and the moved events' ids and stream versions) is committed;
3. the rows are deleted (the trigger allows it only under a record); a crash
   between 2 and 3 leaves rows both live and archived: the next run checks the
   segment against them and deletes them;
4. at the end the freed pages go back to the file system (incremental vacuum).
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import msgspec

from atlasd.errors import Internal, Unavailable
from atlasd.eventlog.archive import (
    ArchiveRecord,
    archive_dir,
    read_records,
    read_segment,
    write_segment,
)
from atlasd.eventlog.chain import GENESIS_HASH
from atlasd.eventlog.datadir import DataDirLock, db_bytes, db_path
from atlasd.eventlog.rows import body_of, event_id_text
from atlasd.eventlog.sql import Statements, connect, migrate, transaction, translated

__all__ = ["SEGMENT_EVENTS", "CompactReport", "compact"]

#: Events per segment (about 1-2 MB of bodies before compression).
SEGMENT_EVENTS = 5_000
# pages freed per incremental_vacuum step
_VACUUM_STEP = 2_000


class CompactReport(msgspec.Struct, frozen=True, kw_only=True):
    #: Events moved by this run (not counting an interrupted run's that it finished).
    archived: int
    segments: int
    #: Records of an interrupted run whose rows this run deleted.
    finished: int
    #: Unrecorded segment files removed.
    orphans_removed: int
    db_bytes_before: int
    db_bytes_after: int
    seconds: float


def compact(
    data_dir: Path,
    *,
    older_than_ms: int,
    synced_only: bool,
    segment_events: int = SEGMENT_EVENTS,
    now_ms: int | None = None,
) -> CompactReport:
    """Archive what the rules in the module docstring allow; see there for crash safety.

    Error handling: :class:`Unavailable` when a daemon holds the data dir, when
    there is no database, or when a recorded segment does not match the rows it
    is said to hold (nothing is deleted then); sqlite3 errors are translated.
    """
    if older_than_ms < 0 or segment_events < 1:
        raise ValueError("older_than_ms must be >= 0 and segment_events >= 1")
    started = time.perf_counter()
    path = db_path(data_dir)
    if not path.exists():
        raise Unavailable(f"no atlasd database at {path}")
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with DataDirLock(data_dir):
        before = db_bytes(path)
        with translated():
            conn = connect(path)
        try:
            with translated():
                migrate(conn)
                records = read_records(conn)
                finished = _finish(conn, data_dir, records)
                orphans = _remove_orphans(data_dir, records)
                limit = _limit(conn, now - older_than_ms, synced_only)
                archived = segments = 0
                while True:
                    rows = [
                        (row[0], event_id_text(row[1]), row[2], row[3], row[5].hex(), body_of(*row))
                        for row in conn.execute(Statements.rows_up_to, (limit, segment_events))
                    ]
                    if not rows:
                        break
                    records = read_records(conn)
                    prev = records[-1].last_hash if records else GENESIS_HASH
                    expected_first = records[-1].last_seq + 1 if records else 1
                    if int(rows[0][0]) != expected_first:
                        raise Unavailable(
                            f"the live log starts at seq {rows[0][0]}, not {expected_first}:"
                            " run atlasd verify"
                        )
                    record = _write(data_dir, rows, prev)
                    _record(conn, record, rows, now)
                    _delete(conn, record)
                    archived += len(rows)
                    segments += 1
                if archived or finished:
                    _vacuum(conn)
        finally:
            conn.close()
        after = db_bytes(path)
    return CompactReport(
        archived=archived,
        segments=segments,
        finished=finished,
        orphans_removed=orphans,
        db_bytes_before=before,
        db_bytes_after=after,
        seconds=time.perf_counter() - started,
    )


# a moved event: seq, event_id, stream, version, hash (hex), stored event
_Moved = tuple[int, str, str, int, str, bytes]


def _limit(conn: sqlite3.Connection, cutoff_ms: int, synced_only: bool) -> int:
    """The last seq that may move."""
    row = conn.execute(Statements.first_recorded_since, (cutoff_ms,))
    young = row.fetchone()[0]
    end = conn.execute(Statements.last_seq).fetchone()[0]
    limit = int(end) if end is not None else 0
    if young is not None:
        limit = min(limit, int(young) - 1)
    if synced_only:
        limit = min(limit, int(conn.execute(Statements.acked_seq).fetchone()[0]))
    quarantined = conn.execute(Statements.first_quarantined).fetchone()[0]
    if quarantined is not None:
        limit = min(limit, int(quarantined) - 1)
    return limit


def _write(data_dir: Path, rows: list[_Moved], prev_hash: str) -> ArchiveRecord:
    """Step 1: the segment file."""
    first, last = rows[0][0], rows[-1][0]
    bodies = [row[5] for row in rows]
    name, size, digest = write_segment(archive_dir(data_dir), first, last, bodies)
    return ArchiveRecord(
        first_seq=first,
        last_seq=last,
        prev_hash=prev_hash,
        last_hash=rows[-1][4],
        events=len(rows),
        file=name,
        bytes=size,
        sha256=digest,
    )


def _record(conn: sqlite3.Connection, record: ArchiveRecord, rows: list[_Moved], now: int) -> None:
    """Step 2: the record, the moved ids and the streams' versions, in one transaction."""
    versions: dict[str, int] = defaultdict(int)
    for _seq, _id, stream, version, _hash, _body in rows:
        versions[stream] = max(versions[stream], version)
    with transaction(conn):
        conn.execute(
            Statements.put_archive,
            (
                record.first_seq,
                record.last_seq,
                record.prev_hash,
                record.last_hash,
                record.events,
                record.file,
                record.bytes,
                record.sha256,
                now,
            ),
        )
        conn.executemany(Statements.put_archived_id, [(row[1], row[0]) for row in rows])
        conn.executemany(Statements.put_archived_stream, list(versions.items()))


def _delete(conn: sqlite3.Connection, record: ArchiveRecord) -> None:
    """Step 3: the archived rows leave the live table."""
    with transaction(conn):
        conn.execute(Statements.delete_archived, (record.first_seq, record.last_seq))


def _finish(conn: sqlite3.Connection, data_dir: Path, records: list[ArchiveRecord]) -> int:
    """Delete the live rows an interrupted run had recorded; returns how many records."""
    finished = 0
    for record in records:
        live = [
            (row[0], body_of(*row))
            for row in conn.execute(Statements.rows_between, (record.first_seq, record.last_seq))
        ]
        if not live:
            continue
        bodies = read_segment(archive_dir(data_dir), record)
        for seq, body in live:
            if bodies[int(seq) - record.first_seq] != bytes(body):
                raise Unavailable(
                    f"archive segment {record.file} disagrees with live seq {seq};"
                    " nothing deleted: run atlasd verify"
                )
        _delete(conn, record)
        finished += 1
    return finished


def _remove_orphans(data_dir: Path, records: list[ArchiveRecord]) -> int:
    """Remove what an interrupted run left: temporary files, and an unrecorded segment
    that starts right after the last recorded one (the one it was writing). Other
    unrecorded segments (say, those of a database a restore set aside) are left alone."""
    directory = archive_dir(data_dir)
    if not directory.is_dir():
        return 0
    recorded = {record.file for record in records}
    next_seq = records[-1].last_seq + 1 if records else 1
    removed = 0
    for entry in directory.iterdir():
        name = entry.name
        leftover = name.startswith(".seg-") and ".tmp-" in name
        orphan = name.startswith(f"seg-{next_seq:012d}-") and name not in recorded
        if (leftover or orphan) and entry.is_file() and not entry.is_symlink():
            entry.unlink()
            removed += 1
    return removed


def _vacuum(conn: sqlite3.Connection) -> None:
    """Step 4: give freed pages back (the first time, switch to incremental auto-vacuum)."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")  # needed once to change the mode of an existing file
    while int(conn.execute("PRAGMA freelist_count").fetchone()[0]) > 0:
        before = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        conn.execute(f"PRAGMA incremental_vacuum({_VACUUM_STEP})").fetchall()
        if int(conn.execute("PRAGMA freelist_count").fetchone()[0]) >= before:
            raise Internal("incremental vacuum made no progress")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
