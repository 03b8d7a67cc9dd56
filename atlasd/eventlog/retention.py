"""The steps of a compaction, shared by ``atlasd compact`` (offline) and the daemon.

Which events may move (:func:`movable_until`): a prefix of the log, in seq
order, every one of them

- synced, when ``synced_only`` (seq <= the sync cursor; after a re-origin the
  cursor is back at 0, so nothing moves until the log has been sent again),
- before the first quarantined event (a retry reads the event back),

and chosen by age (recorded more than ``older_than_ms`` ago) or by size (the
oldest ones, while the database's pages in use exceed ``past_bytes``): an
event moves when either rule picks it.

A segment goes through these steps, in order, each its own transaction (the
file is on disk before its record commits; later steps may be undone by a
power cut, latest first, since the WAL keeps commit order, and each is
harmless to lose):

1. :func:`atlasd.eventlog.archive.write_segment`: the file (temporary name,
   fsync, rename, fsync dir). A crash leaves an unrecorded file: an orphan,
   ignored by readers and removed by the next run (:func:`remove_orphans`).
2. :func:`record_step`: the segment's record. From here readers take the
   range from the segment.
3. :func:`move_step`, repeated: up to ``MOVE_CHUNK`` rows of the range leave
   the live table, with their event ids and their streams' versions, in one
   transaction each (a step never holds the writer for long). A crash between
   two leaves some rows of a recorded range live: the next run checks them
   against the segment and moves them (:func:`unfinished`).
4. :func:`vacuum_step`, repeated: up to ``VACUUM_PAGES`` free pages go back
   to the file system, when the database has incremental auto-vacuum.

Each event is therefore always live, archived, or both (for a moment, and
then both copies are equal): never neither.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog.archive import ArchiveRecord, archive_dir, read_segment, write_segment
from atlasd.eventlog.rows import body_of, event_id_text
from atlasd.eventlog.sql import Statements, transaction

__all__ = [
    "MOVE_CHUNK",
    "VACUUM_PAGES",
    "CompactionRule",
    "LastCompaction",
    "Segment",
    "auto_vacuum_incremental",
    "live_bytes",
    "movable_until",
    "move_step",
    "next_rows",
    "read_last_compaction",
    "record_step",
    "remove_orphans",
    "store_last_compaction",
    "unfinished",
    "vacuum_step",
    "write_rows",
]

#: Most rows one :func:`move_step` moves (a few ms of the writer's time).
MOVE_CHUNK = 100
#: Most pages one :func:`vacuum_step` gives back (256 KiB at 4 KiB pages; 256 pages
#: measured up to 30 ms a step, 64 under 7 ms: bench/bench_compaction.py).
VACUUM_PAGES = 64
# the meta key of the last compaction's figures
_LAST_KEY = "last_compaction"
# SQLite's auto_vacuum value for INCREMENTAL
_INCREMENTAL = 2


class CompactionRule(msgspec.Struct, frozen=True, kw_only=True):
    """What may move (see the module docstring); both rules None: nothing moves."""

    older_than_ms: int | None = None
    past_bytes: int | None = None
    synced_only: bool = True
    segment_events: int = 5_000


class LastCompaction(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of the last compaction run that moved or freed anything."""

    #: When it ended (ms since the epoch).
    at_ms: int
    #: Events it moved into segments.
    events: int
    segments: int
    #: How much smaller the database file (plus WAL) became.
    bytes_freed: int
    #: ``"offline"``: ``atlasd compact``.
    by: Literal["daemon", "offline"]


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded segment with its bodies in memory, ready to be moved."""

    record: ArchiveRecord
    bodies: list[bytes]


# -- what may move ------------------------------------------------------------------


def live_bytes(conn: sqlite3.Connection) -> int:
    """The database's pages in use, in bytes (free pages do not count)."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return (pages - free) * size


def movable_until(conn: sqlite3.Connection, rule: CompactionRule, now_ms: int) -> int:
    """The last seq that may move now (0: none)."""
    end = conn.execute(Statements.last_seq).fetchone()[0]
    if end is None:
        return 0
    last = int(end)
    chosen = 0
    if rule.older_than_ms is not None:
        young = conn.execute(
            Statements.first_recorded_since, (now_ms - rule.older_than_ms,)
        ).fetchone()[0]
        chosen = last if young is None else int(young) - 1
    if rule.past_bytes is not None:
        chosen = max(chosen, _past_bytes_until(conn, rule.past_bytes))
    limit = min(last, chosen)
    if rule.synced_only:
        limit = min(limit, int(conn.execute(Statements.acked_seq).fetchone()[0]))
    quarantined = conn.execute(Statements.first_quarantined).fetchone()[0]
    if quarantined is not None:
        limit = min(limit, int(quarantined) - 1)
    return max(0, limit)


def _past_bytes_until(conn: sqlite3.Connection, past_bytes: int) -> int:
    """The last seq of the oldest events whose moving brings the pages in use down to
    ``past_bytes``, estimated at the live log's mean bytes per event (views count in
    the mean and never move, so a run may fall short: the next one moves more)."""
    used = live_bytes(conn)
    if used <= past_bytes:
        return 0
    live = int(conn.execute(Statements.count_live).fetchone()[0])
    if live == 0:
        return 0
    moving = min(live, math.ceil((used - past_bytes) / (used / live)))
    row = conn.execute(Statements.live_seq_at, (moving - 1,)).fetchone()
    return int(row[0]) if row is not None else 0


def next_rows(
    conn: sqlite3.Connection, after_seq: int, until_seq: int, count: int
) -> list[tuple[object, ...]]:
    """The next segment's rows: up to ``count`` live events after ``after_seq`` up to
    ``until_seq`` (seq, event_id, stream, version, hash as hex, stored event)."""
    return [
        (row[0], event_id_text(row[1]), row[2], row[3], row[5].hex(), body_of(*row))
        for row in conn.execute(Statements.rows_in_range, (after_seq, until_seq, count))
    ]


# -- the steps ------------------------------------------------------------------------


def write_rows(data_dir: Path, rows: Sequence[tuple[object, ...]], prev_hash: str) -> Segment:
    """Step 1: the segment file of ``rows`` (seq, event_id, stream, version, hash, body)."""
    first, last = int(str(rows[0][0])), int(str(rows[-1][0]))
    bodies = [bytes(row[5]) for row in rows]  # type: ignore[call-overload]
    name, size, digest = write_segment(archive_dir(data_dir), first, last, bodies)
    record = ArchiveRecord(
        first_seq=first,
        last_seq=last,
        prev_hash=prev_hash,
        last_hash=str(rows[-1][4]),
        events=len(rows),
        file=name,
        bytes=size,
        sha256=digest,
    )
    return Segment(record=record, bodies=bodies)


def record_step(conn: sqlite3.Connection, record: ArchiveRecord, now_ms: int) -> None:
    """Step 2: the segment's record, in one transaction."""
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
                now_ms,
            ),
        )


def move_step(conn: sqlite3.Connection, segment: Segment, chunk: int = MOVE_CHUNK) -> int:
    """Step 3: the next ``chunk`` live rows of a recorded range leave the live table with
    their ids and streams' versions, in one transaction; returns how many (0: done).

    Error handling: a live row whose body differs from the segment's raises
    :class:`Unavailable` and nothing is deleted.
    """
    record = segment.record
    with transaction(conn):
        rows = conn.execute(
            Statements.rows_to_move, (record.first_seq, record.last_seq, chunk)
        ).fetchall()
        if not rows:
            return 0
        versions: dict[str, int] = defaultdict(int)
        for row in rows:
            seq, stream, version = row[0], row[2], row[3]
            if segment.bodies[int(seq) - record.first_seq] != body_of(*row):
                raise Unavailable(
                    f"archive segment {record.file} disagrees with live seq {seq};"
                    " nothing deleted: run atlasd verify"
                )
            versions[str(stream)] = max(versions[str(stream)], int(version))
        # the delete first: its pages serve the ids' rows (a log at its size cap has no others)
        conn.execute(Statements.delete_archived, (record.first_seq, int(rows[-1][0])))
        conn.executemany(
            Statements.put_archived_id, [(event_id_text(row[1]), row[0]) for row in rows]
        )
        conn.executemany(Statements.put_archived_stream, list(versions.items()))
    return len(rows)


def vacuum_step(conn: sqlite3.Connection, pages: int = VACUUM_PAGES) -> int:
    """Step 4: give up to ``pages`` free pages back; returns the free pages left (0 too
    when the database does not have incremental auto-vacuum: its free pages are only
    reused, see :func:`auto_vacuum_incremental`)."""
    if not auto_vacuum_incremental(conn):
        return 0
    # executescript steps the pragma to its end: execute() stops after one step, one page
    conn.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
    return int(conn.execute("PRAGMA freelist_count").fetchone()[0])


def auto_vacuum_incremental(conn: sqlite3.Connection) -> bool:
    return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == _INCREMENTAL


# -- an interrupted run's leftovers ------------------------------------------------------


def unfinished(
    conn: sqlite3.Connection, data_dir: Path, records: Sequence[ArchiveRecord]
) -> list[Segment]:
    """Recorded segments some of whose rows are still live (an interrupted run's), read
    and checked (Error handling: an unreadable or altered segment raises
    :class:`Unavailable`)."""
    left: list[Segment] = []
    for record in records:
        live = conn.execute(
            Statements.any_live_between, (record.first_seq, record.last_seq)
        ).fetchone()
        if live is not None:
            bodies = read_segment(archive_dir(data_dir), record)
            left.append(Segment(record=record, bodies=bodies))
    return left


def remove_orphans(data_dir: Path, records: Sequence[ArchiveRecord]) -> int:
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


# -- the last run's figures ---------------------------------------------------------------

_encode_last = msgspec.json.Encoder().encode
_decode_last = msgspec.json.Decoder(LastCompaction).decode


def store_last_compaction(conn: sqlite3.Connection, last: LastCompaction) -> None:
    with transaction(conn):
        conn.execute(Statements.set_meta, (_LAST_KEY, _encode_last(last).decode()))


def read_last_compaction(conn: sqlite3.Connection) -> LastCompaction | None:
    row = conn.execute(Statements.get_meta, (_LAST_KEY,)).fetchone()
    if row is None:
        return None
    try:
        return _decode_last(str(row[0]))
    except msgspec.DecodeError:
        return None  # figures only: an unreadable entry is as good as none
