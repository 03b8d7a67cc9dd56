"""The daemon's own compaction: the steps of :mod:`atlasd.eventlog.retention`, run
against an open :class:`~atlasd.eventlog.store.EventStore`.

What may move and the segments' rows are read on a read-only connection and
the segment files written on a worker thread; only the short steps that
change the database (record, move ``MOVE_CHUNK`` rows, vacuum ``VACUUM_PAGES``
pages) go through the store's writer, one at a time between group commits,
so an append waits at most one step. Crash safety is the steps' own
(see :mod:`atlasd.eventlog.retention`); a run after a crash first finishes
what the interrupted one recorded.

A database made before incremental auto-vacuum is not converted here (that is
one ``VACUUM`` of the whole file, holding appends meanwhile): its freed pages
are reused by new events, and ``atlasd compact`` run once offline converts it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog import retention
from atlasd.eventlog.archive import ArchiveRecord
from atlasd.eventlog.chain import GENESIS_HASH
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.retention import CompactionRule, LastCompaction, Segment
from atlasd.eventlog.sql import connect, snapshot, translated
from atlasd.eventlog.store import EventStore

__all__ = ["Compactor", "RunReport"]


class RunReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one run did."""

    archived: int
    segments: int
    #: Recorded segments of an interrupted run whose rows this run moved.
    finished: int
    orphans_removed: int
    #: How much smaller the database became, in pages given back (0: none).
    bytes_freed: int
    #: False when the database lacks incremental auto-vacuum (run ``atlasd compact``).
    shrinks: bool


class _Plan(msgspec.Struct, frozen=True, kw_only=True):
    unfinished: list[Segment]
    orphans_removed: int
    until_seq: int
    shrinks: bool
    #: The database's size (pages) when the run began.
    db_bytes: int


class Compactor:
    """Runs compactions of one store; one run at a time (a second waits for the first).

    Error handling: a run raises the :class:`~atlasd.errors.AtlasdError` of the step
    that failed; what the steps before it did stays done, and the next run goes on
    from there.
    """

    def __init__(
        self,
        store: EventStore,
        rule: CompactionRule,
        *,
        move_chunk: int = retention.MOVE_CHUNK,
        vacuum_pages: int = retention.VACUUM_PAGES,
    ) -> None:
        self._store = store
        self._rule = rule
        self._data_dir = store.config.data_dir
        self._move_chunk = move_chunk
        self._vacuum_pages = vacuum_pages
        self._lock = asyncio.Lock()
        #: True while a run is going on (``status``).
        self.running = False

    async def run(self, *, now_ms: int | None = None) -> RunReport:
        """Finish an interrupted run, move what may move, give the pages back."""
        async with self._lock:
            self.running = True
            try:
                return await self._run(now_ms)
            finally:
                self.running = False

    async def _run(self, now_ms: int | None) -> RunReport:
        store = self._store
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        path = db_path(self._data_dir)
        conn = await asyncio.to_thread(_connect, path)
        try:
            plan = await asyncio.to_thread(self._plan, conn, store.archives.records, now)
            for segment in plan.unfinished:
                await self._move(segment)
            archived = segments = 0
            while True:
                archives = store.archives
                rows = await asyncio.to_thread(
                    _rows, conn, archives.last_seq, plan.until_seq, self._rule.segment_events
                )
                if not rows:
                    break
                prev = archives.records[-1].last_hash if archives.records else GENESIS_HASH
                segment = await asyncio.to_thread(_write_rows, self._data_dir, rows, prev)
                await store.archive_record(segment.record, now)
                await self._move(segment)
                archived += segment.record.events
                segments += 1
            if archived or plan.unfinished:
                await self._vacuum(plan)
            freed = max(0, plan.db_bytes - await asyncio.to_thread(_file_bytes, conn))
        finally:
            await asyncio.to_thread(conn.close)
        if archived or plan.unfinished:
            await store.note_compaction(
                LastCompaction(
                    at_ms=time.time_ns() // 1_000_000,
                    events=archived,
                    segments=segments,
                    bytes_freed=freed,
                    by="daemon",
                )
            )
        return RunReport(
            archived=archived,
            segments=segments,
            finished=len(plan.unfinished),
            orphans_removed=plan.orphans_removed,
            bytes_freed=freed,
            shrinks=plan.shrinks,
        )

    async def _vacuum(self, plan: _Plan) -> None:
        free = -1
        while plan.shrinks:
            left = await self._store.archive_vacuum(self._vacuum_pages)
            if left == 0 or left == free:  # done, or nothing more to give back
                break
            free = left

    async def _move(self, segment: Segment) -> None:
        while await self._store.archive_move(segment, self._move_chunk):
            pass

    def _plan(self, conn: sqlite3.Connection, records: list[ArchiveRecord], now: int) -> _Plan:
        """On a worker thread: an interrupted run's leftovers, and what may move now."""
        with snapshot(conn):  # every figure of the plan from the same moment
            unfinished = retention.unfinished(conn, self._data_dir, records)
            until = retention.movable_until(conn, self._rule, now)
            shrinks = retention.auto_vacuum_incremental(conn)
            size = _file_bytes(conn)
        try:
            orphans = retention.remove_orphans(self._data_dir, records)
        except OSError as exc:
            raise Unavailable(f"cannot clean the archive directory: {exc}") from exc
        return _Plan(
            unfinished=unfinished,
            orphans_removed=orphans,
            until_seq=until,
            shrinks=shrinks,
            db_bytes=size,
        )


def _write_rows(data_dir: Path, rows: list[tuple[object, ...]], prev: str) -> Segment:
    try:
        return retention.write_rows(data_dir, rows, prev)
    except OSError as exc:  # a full disk, say: nothing is recorded, the rows stay live
        raise Unavailable(f"cannot write an archive segment: {exc.strerror or exc}") from exc


def _rows(conn: sqlite3.Connection, after: int, until: int, count: int) -> list[tuple[object, ...]]:
    with translated():
        return retention.next_rows(conn, after, until, count)


def _connect(path: Path) -> sqlite3.Connection:
    with translated():
        return connect(path, readonly=True)


def _file_bytes(conn: sqlite3.Connection) -> int:
    """The database's size in pages (what the file comes to once checkpointed)."""
    with translated():
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        return pages * int(conn.execute("PRAGMA page_size").fetchone()[0])
