"""``compact``: move old events out of the live table into archive segments, offline.

Runs with the daemon stopped (it takes the data dir's lock); a running daemon
compacts by itself (:mod:`atlasd.eventlog.autocompact`). Which events may move
and the steps each segment goes through, so that a crash anywhere loses
nothing and the next run finishes or cleans up, are in
:mod:`atlasd.eventlog.retention`.

Offline is also where a database made before incremental auto-vacuum is
converted (one ``VACUUM``, a rewrite of the whole file): the daemon never does
it, since it would hold appends for as long as the rewrite takes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from atlasd.errors import Internal, Unavailable
from atlasd.eventlog import retention
from atlasd.eventlog.archive import ArchiveRecord, read_records
from atlasd.eventlog.chain import GENESIS_HASH
from atlasd.eventlog.datadir import DataDirLock, db_bytes, db_path
from atlasd.eventlog.retention import CompactionRule, LastCompaction, Segment
from atlasd.eventlog.sql import Statements, connect, migrate, translated

__all__ = ["SEGMENT_EVENTS", "CompactReport", "compact"]

#: Events per segment (about 1-2 MB of bodies before compression).
SEGMENT_EVENTS = 5_000
# pages freed per incremental_vacuum step offline (nothing waits on it)
_VACUUM_STEP = 2_000

#: ``progress(done, total)``: events moved so far out of the run's total.
Progress = Callable[[int, int], None]


class CompactReport(msgspec.Struct, frozen=True, kw_only=True):
    #: Events moved by this run (not counting an interrupted run's that it finished).
    archived: int
    segments: int
    #: Records of an interrupted run whose rows this run moved.
    finished: int
    #: Unrecorded segment files removed.
    orphans_removed: int
    db_bytes_before: int
    db_bytes_after: int
    seconds: float
    #: True when this run switched the database to incremental auto-vacuum (one VACUUM).
    converted: bool = False


def compact(
    data_dir: Path,
    *,
    older_than_ms: int | None,
    synced_only: bool,
    segment_events: int = SEGMENT_EVENTS,
    past_bytes: int | None = None,
    now_ms: int | None = None,
    progress: Progress | None = None,
    move_chunk: int = retention.MOVE_CHUNK,
) -> CompactReport:
    """Archive what the rules of :mod:`atlasd.eventlog.retention` allow (by age, by
    size, or both); see there for crash safety.

    Error handling: :class:`Unavailable` when a daemon holds the data dir, when
    there is no database, or when a recorded segment does not match the rows it
    is said to hold (nothing is deleted then); sqlite3 errors are translated.
    """
    if (older_than_ms is not None and older_than_ms < 0) or segment_events < 1:
        raise ValueError("older_than_ms must be >= 0 and segment_events >= 1")
    if past_bytes is not None and past_bytes < 1:
        raise ValueError("past_bytes must be >= 1")
    started = time.perf_counter()
    path = db_path(data_dir)
    if not path.exists():
        raise Unavailable(f"no atlasd database at {path}")
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rule = CompactionRule(
        older_than_ms=older_than_ms,
        past_bytes=past_bytes,
        synced_only=synced_only,
        segment_events=segment_events,
    )
    report = progress or (lambda done, total: None)
    with DataDirLock(data_dir):
        before = db_bytes(path)
        with translated():
            conn = connect(path)
        try:
            with translated():
                migrate(conn)
                records = read_records(conn)
                left = retention.unfinished(conn, data_dir, records)
                for segment in left:
                    _delete(conn, segment, move_chunk)
                orphans = retention.remove_orphans(data_dir, records)
                limit = retention.movable_until(conn, rule, now)
                total = int(conn.execute(Statements.live_up_to, (limit,)).fetchone()[0])
                report(0, total)
                archived = segments = 0
                while True:
                    records = read_records(conn)
                    after = records[-1].last_seq if records else 0
                    rows = retention.next_rows(conn, after, limit, segment_events)
                    if not rows:
                        break
                    if int(str(rows[0][0])) != after + 1:
                        raise Unavailable(
                            f"the live log starts at seq {rows[0][0]}, not {after + 1}:"
                            " run atlasd verify"
                        )
                    prev = records[-1].last_hash if records else GENESIS_HASH
                    segment = _write(data_dir, rows, prev)
                    _record(conn, segment.record, now)
                    _delete(conn, segment, move_chunk)
                    archived += len(rows)
                    segments += 1
                    report(archived, total)
                # always: a database made before incremental auto-vacuum is converted here
                converted = _vacuum(conn)
                after_bytes = db_bytes(path)
                if archived or left:
                    retention.store_last_compaction(
                        conn,
                        LastCompaction(
                            at_ms=time.time_ns() // 1_000_000,
                            events=archived,
                            segments=segments,
                            bytes_freed=max(0, before - after_bytes),
                            by="offline",
                        ),
                    )
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        after_bytes = db_bytes(path)
    return CompactReport(
        archived=archived,
        segments=segments,
        finished=len(left),
        orphans_removed=orphans,
        db_bytes_before=before,
        db_bytes_after=after_bytes,
        seconds=time.perf_counter() - started,
        converted=converted,
    )


# The steps under the names the crash test stops at (tests/eventlog/compact_crasher.py).


def _write(data_dir: Path, rows: list[tuple[object, ...]], prev_hash: str) -> Segment:
    """Step 1: the segment file."""
    return retention.write_rows(data_dir, rows, prev_hash)


def _record(conn: sqlite3.Connection, record: ArchiveRecord, now: int) -> None:
    """Step 2: the record."""
    retention.record_step(conn, record, now)


def _delete(conn: sqlite3.Connection, segment: Segment, chunk: int) -> None:
    """Step 3: the segment's rows leave the live table, ``chunk`` at a time."""
    while _move(conn, segment, chunk):
        pass


def _move(conn: sqlite3.Connection, segment: Segment, chunk: int) -> int:
    return retention.move_step(conn, segment, chunk)


def _vacuum(conn: sqlite3.Connection) -> bool:
    """Step 4: give freed pages back; the first time, switch to incremental auto-vacuum
    (returns True then)."""
    converted = False
    if not retention.auto_vacuum_incremental(conn):
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")  # needed once to change the mode of an existing file
        converted = True
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    while free > 0:
        left = retention.vacuum_step(conn, _VACUUM_STEP)
        if left >= free:
            raise Internal("incremental vacuum made no progress")
        free = left
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return converted
