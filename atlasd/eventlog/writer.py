"""The write side of the store: one sqlite3 connection, driven from one thread.

Why stdlib sqlite3 and not aiosqlite here: a group commit is dozens of
statements (duplicate checks, stream versions, inserts, view rows); through
aiosqlite every one would be a ~40 us thread round trip, while one call into
this thread runs the whole group's transaction at ~1 us per statement (see
bench/bench_store.py). Reads stay on aiosqlite.

Every method runs on the store's single writer thread, so nothing here locks.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import msgspec

from atlasd.errors import AtlasdError, EventIdConflict, InvalidValue, VersionConflict
from atlasd.eventlog import retention
from atlasd.eventlog.archive import ArchiveRecord, ArchiveSet, read_records
from atlasd.eventlog.chain import GENESIS_HASH, SEALED_EXTRA, seal_content, sealed_body
from atlasd.eventlog.config import StoreConfig
from atlasd.eventlog.datadir import db_bytes
from atlasd.eventlog.lineage import LineageEntry, read_lineage, reorigin
from atlasd.eventlog.model import Rejection
from atlasd.eventlog.replay import catch_up, stale_views
from atlasd.eventlog.rows import event_id_bytes, payload_object, sealed_row
from atlasd.eventlog.sql import (
    IDS_PER_LOOKUP,
    Statements,
    Transaction,
    connect,
    events_by_ids,
    migrate,
    transaction,
    translated,
)
from atlasd.events import AppendResult, NewEvent
from atlasd.events.ids import new_event_ids_and_bytes
from atlasd.events.validation import CONVEX_SIZE_FLOOR, MAX_EVENT_BYTES, check_document_size
from atlasd.packs.engine import Fold
from atlasd.packs.registry import PackSet

log = logging.getLogger("atlasd.eventlog")

__all__ = ["Prepared", "Request", "Writer"]

_T = TypeVar("_T")

_canonical = msgspec.json.Encoder(order="sorted").encode


class _StoredData(msgspec.Struct):
    data: dict[str, Any]


class _ArchivedEvent(msgspec.Struct):
    stream: str
    version: int
    type: str
    data: dict[str, Any]


_decode_stored = msgspec.json.Decoder(_StoredData).decode
_decode_archived = msgspec.json.Decoder(_ArchivedEvent).decode

# Bound on the stream -> version cache (it is only a cache of the events table).
_STREAM_CACHE_MAX = 100_000
# View rows kept in memory between group commits, so that the next group finds
# the builds and tasks it updates without reading them back.
_KEEP_ROWS = 20_000


#: A validated event waiting for its position: what ``validate_new_event`` returned
#: (values normalised, ``meta`` an object, the id canonical), not copied again.
Prepared: TypeAlias = NewEvent


class Request(msgspec.Struct, kw_only=True):
    """One ``append`` (one event) or ``append_batch`` (all or nothing)."""

    events: list[Prepared]
    recorded_at: int | None = None


#: Client ids as the table keeps them, and the live events among them by those bytes
#: (seq, stream, version, type, payload).
_KnownIds: TypeAlias = tuple[dict[str, bytes], dict[bytes, tuple[Any, ...]]]


class _Plan(msgspec.Struct, array_like=True):
    """A request planned by :meth:`Writer._plan`: what it inserts and answers, and the
    position it leaves the log at."""

    rows: list[tuple[Any, ...]]
    results: list[AppendResult]
    #: the client ids it appends (duplicates within a group are answered from them)
    claimed: dict[str, tuple[Prepared, AppendResult]]
    #: each stream it appends to, at its new version
    versions: dict[str, int]
    new_streams: int
    last_hash: str


class Writer:
    """Owns the write connection: opening, group commits, sync bookkeeping writes.

    Resource handling: :meth:`close` closes the connection; the caller owns the
    thread.

    Error handling: a request that fails (conflict, too large) is skipped alone
    and its error returned in its place; a database error (disk full, I/O)
    rolls the whole group back and every request in it gets the translated
    :class:`~atlasd.errors.Unavailable`; the in-memory position is restored,
    so the next group starts clean.
    """

    def __init__(self, path: Path, config: StoreConfig, packs: PackSet) -> None:
        self._path = path
        self._config = config
        self.packs = packs
        self._projected = packs.event_types
        self._conn: sqlite3.Connection | None = None
        self.origin = ""
        self.lineage: list[LineageEntry] = []
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        self.streams = 0
        self._versions: dict[str, int] = {}
        # the views' row cache, valid only between committed groups (None: start afresh)
        self._fold: Fold | None = None
        self._page_size = 4096
        # a streamed append's state between its calls (see stream_begin)
        self._stream_saved = (0, GENESIS_HASH, 0)
        self._stream_now = 0
        self._stream_fold: Fold | None = None
        self._stream_tx: Transaction | None = None
        #: the archived part of the log (replaced, never changed, by :meth:`archive_record`)
        self.archives = ArchiveSet(path.parent, [])
        #: the last compaction's figures (``status``)
        self.last_compaction: retention.LastCompaction | None = None

    def _new_fold(self, conn: sqlite3.Connection) -> Fold:
        return Fold(conn, self.packs, dict.fromkeys(self.packs.view_names, 0), keep_rows=_KEEP_ROWS)

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "writer is not open"
        return self._conn

    # -- life cycle ----------------------------------------------------------

    def open(self) -> None:
        """Create or migrate the schema, make the origin once, bring views up to date."""
        try:
            with translated():
                conn = self._conn = connect(self._path, synchronous=self._config.synchronous)
                self._load(conn)
        except BaseException:
            self.close()
            raise

    def _load(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA cache_size = -{self._config.cache_kib}")
        migrate(conn)
        row = conn.execute(Statements.get_meta, ("origin",)).fetchone()
        if row is None:
            conn.execute(Statements.put_meta, ("origin", str(uuid.uuid4())))
            row = conn.execute(Statements.get_meta, ("origin",)).fetchone()
        self.origin = str(row[0])
        self.lineage = read_lineage(conn)
        self.archives = ArchiveSet(self._path.parent, read_records(conn))
        self.last_compaction = retention.read_last_compaction(conn)
        last = conn.execute(Statements.log_end).fetchone()
        if last is not None:
            self.last_seq, self.last_hash = int(last[0]), str(last[1])
        self.streams = int(conn.execute(Statements.count_streams).fetchone()[0])
        self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        self.set_size_cap(self._config.max_db_bytes)
        catch_up(conn, stale_views(conn, self.packs), packs=self.packs)

    def _reconnect(self) -> None:
        """A fresh write connection, set up as :meth:`open` sets one up."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        self._fold = None  # the row cache may hold what the old connection rolled back
        with translated():
            conn = self._conn = connect(self._path, synchronous=self._config.synchronous)
            conn.execute(f"PRAGMA cache_size = -{self._config.cache_kib}")
            self.set_size_cap(self._cap)

    def set_size_cap(self, max_db_bytes: int | None) -> None:
        """Refuse growth past ``max_db_bytes`` (None: no cap beyond the disk)."""
        self._cap = max_db_bytes
        pages = 0x7FFF_FFFE if max_db_bytes is None else max(1, max_db_bytes // self._page_size)
        self.conn.execute(f"PRAGMA max_page_count = {pages}")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):  # best effort; all is committed
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None

    # -- appends -------------------------------------------------------------

    def commit_group(self, requests: Sequence[Request]) -> list[list[AppendResult] | AtlasdError]:
        """Append every request in one transaction (one fsync); see the class docstring."""
        conn = self.conn
        saved = (self.last_seq, self.last_hash, self.streams)
        outcomes: list[list[AppendResult] | AtlasdError] = []
        all_rows: list[tuple[Any, ...]] = []
        folded: list[tuple[int, str, str, dict[str, Any], int]] = []
        # client ids appended by earlier requests of this group (not yet in the table)
        group_ids: dict[str, tuple[Prepared, AppendResult]] = {}
        now = time.time_ns() // 1_000_000
        fresh_ids = zip(
            *new_event_ids_and_bytes(
                sum(1 for r in requests for ev in r.events if ev.event_id is None)
            ),
            strict=True,
        )
        tx = transaction(conn, size_cap=self._cap_reached)
        try:
            tx.begin()
            # the whole group's client ids in one lookup, not one per request
            known = self._known_ids(ev for r in requests for ev in r.events)
            for request in requests:
                # Each request is checked whole before anything of it is written, so a
                # failing one leaves no trace and needs no savepoint.
                try:
                    plan = self._plan(request, now, fresh_ids, group_ids, folded, known)
                except AtlasdError as error:
                    outcomes.append(error)
                    continue
                rows = plan.rows
                if rows:
                    self._take(plan)
                    all_rows.extend(rows)
                    if plan.claimed:
                        group_ids.update(plan.claimed)
                outcomes.append(plan.results)
            if all_rows:
                conn.executemany(Statements.insert_event, all_rows)
                # the views move in the same transaction as the log: never behind, never ahead
                fold = self._fold or self._new_fold(conn)
                self._fold = None  # until this commit succeeds its cache is not to be trusted
                fold.apply_many(folded)
                fold.flush(checkpoint=self.last_seq)
                tx.commit()
                self._fold = fold
            else:
                tx.commit()
        except (sqlite3.Error, AtlasdError) as exc:  # the database failed: the group rolls back
            self._abort(saved, tx)
            failure = tx.error(exc) if isinstance(exc, sqlite3.Error) else exc
            return [failure] * len(requests)
        except BaseException:
            self._abort(saved, tx)
            raise
        if len(self._versions) > _STREAM_CACHE_MAX:
            self._versions.clear()
        return outcomes

    def _take(self, plan: _Plan) -> None:
        """Advance the in-memory position past a planned request's rows."""
        self.last_seq, self.last_hash = plan.rows[-1][0], plan.last_hash
        self._versions.update(plan.versions)
        self.streams += plan.new_streams

    # -- streamed append: one transaction over several calls --------------------

    def stream_begin(self) -> None:
        """Open the transaction of a streamed append (the caller keeps others off
        the writer until :meth:`stream_commit` or :meth:`stream_abort`)."""
        self._stream_saved = (self.last_seq, self.last_hash, self.streams)
        self._stream_now = time.time_ns() // 1_000_000
        self._stream_tx = transaction(self.conn, size_cap=self._cap_reached)
        self._stream_tx.begin()
        self._stream_fold = self._fold or self._new_fold(self.conn)
        self._fold = None  # until the commit succeeds its cache is not to be trusted

    def stream_chunk(self, request: Request) -> tuple[int, int, int]:
        """Write one chunk inside the open stream transaction: (appended, duplicates,
        first appended seq or 0). Raises the chunk's error (a conflict, a size or a
        database error); the caller then calls :meth:`stream_abort`."""
        fold, tx = self._stream_fold, self._stream_tx
        assert fold is not None, "stream_begin first"
        assert tx is not None, "stream_begin first"
        fresh_ids = zip(
            *new_event_ids_and_bytes(sum(1 for ev in request.events if ev.event_id is None)),
            strict=True,
        )
        # earlier chunks are in the table already: their ids are found there, not in memory
        folded: list[tuple[int, str, str, dict[str, Any], int]] = []
        with tx.guard():
            known = self._known_ids(request.events)
            plan = self._plan(request, self._stream_now, fresh_ids, {}, folded, known)
        rows, results = plan.rows, plan.results
        if not rows:
            return 0, len(results), 0
        self._take(plan)
        with tx.guard():
            self.conn.executemany(Statements.insert_event, rows)
            fold.apply_many(folded)
            fold.flush()
        return len(rows), len(results) - len(rows), int(rows[0][0])

    def stream_commit(self) -> None:
        """Record the views' checkpoints and commit the stream (its one fsync)."""
        fold, tx = self._stream_fold, self._stream_tx
        assert fold is not None, "stream_begin first"
        assert tx is not None, "stream_begin first"
        try:
            with tx.guard():
                if self.last_seq != self._stream_saved[0]:
                    fold.flush(checkpoint=self.last_seq)
            tx.commit()
        except BaseException:
            self.stream_abort()
            raise
        self._fold, self._stream_fold = fold, None
        if len(self._versions) > _STREAM_CACHE_MAX:
            self._versions.clear()

    def stream_abort(self) -> None:
        """Roll the stream back: nothing of it stays, the position is restored."""
        self._stream_fold = None
        self._abort(self._stream_saved, self._stream_tx)

    def _abort(self, saved: tuple[int, str, int], tx: Transaction | None) -> None:
        if tx is not None:
            tx.rollback()
        self.last_seq, self.last_hash, self.streams = saved
        self._versions.clear()
        self._fold = None

    def _cap_reached(self) -> int | None:
        """The configured cap when it, not the disk, refused a write: the database is
        within a few pages of it, or the disk has room for the database to grow to it
        (a large event can stop many pages short of the cap, and the write that failed
        was rolled back before this is asked)."""
        if self._cap is None:
            return None
        used = int(self.conn.execute("PRAGMA page_count").fetchone()[0]) * self._page_size
        if used + 8 * self._page_size >= self._cap:
            return self._cap
        try:
            free = shutil.disk_usage(self._path.parent).free
        except OSError:
            return None
        return self._cap if free > self._cap - used else None

    def _plan(
        self,
        request: Request,
        now: int,
        fresh_ids: Iterator[tuple[str, bytes]],
        group_ids: dict[str, tuple[Prepared, AppendResult]],
        folded: list[tuple[int, str, str, dict[str, Any], int]],
        known: _KnownIds,
    ) -> _Plan:
        """Positions, hashes and the rows to insert for a request (each event encoded
        once: its hash and its row's payload come from the same bytes); the events the
        views fold are added to ``folded`` once the whole request is planned. Raises
        on a conflict.

        Pure until it returns: nothing is written and no state changes (``folded``
        included), so a failing request leaves no trace. ``known``: the request's
        client ids as bytes, and those the table held before the group
        (:meth:`_known_ids`).
        """
        t = request.recorded_at if request.recorded_at is not None else now
        seq, prev = self.last_seq, self.last_hash.encode()
        versions: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        to_fold: list[tuple[int, str, str, dict[str, Any], int]] = []
        results: list[AppendResult] = []
        in_batch: dict[str, tuple[Prepared, AppendResult]] = {}
        origin = self.origin
        projected = self._projected
        new_streams = 0
        keys, live = known
        for event in request.events:
            event_id = event.event_id
            if event_id is not None:
                earlier = in_batch.get(event_id)
                where = "appears twice in the batch with other content"
                if earlier is None:
                    earlier = group_ids.get(event_id)
                    where = "exists already with a different stream, type or data"
                if earlier is not None:
                    if not _same_content(earlier[0], event.stream, event.type, event.data):
                        raise EventIdConflict(f"event_id {event_id} {where}", event_id=event_id)
                    first = earlier[1]
                    results.append(
                        AppendResult(
                            seq=first.seq, event_id=event_id, version=first.version, duplicate=True
                        )
                    )
                    continue
                key = keys[event_id]
                stored = live.get(key)
                if stored is not None:  # its data as a JSON object, like an archived body
                    stored = (*stored[:4], payload_object(stored[4]))
                elif self.archives.records:
                    stored = self._archived_by_id(event_id)
                if stored is not None:
                    if (
                        stored[1] != event.stream
                        or stored[3] != event.type
                        or _canonical(_decode_stored(stored[4]).data) != _canonical(event.data)
                    ):
                        raise EventIdConflict(
                            f"event_id {event_id} exists already with a different stream, type"
                            " or data",
                            event_id=event_id,
                        )
                    results.append(
                        AppendResult(
                            seq=stored[0], event_id=event_id, version=stored[2], duplicate=True
                        )
                    )
                    continue
            else:
                event_id, key = next(fresh_ids)
            stream = event.stream
            current = versions.get(stream)
            if current is None:
                current = self._stream_version(stream)
            expected = event.expected_version
            if expected is not None and expected != current:
                raise VersionConflict(
                    f"stream {stream!r} is at version {current}, expected {expected}",
                    current_version=current,
                )
            version = current + 1
            seq += 1
            occurred = event.occurred_at
            if occurred is None:
                occurred = t
            event_type, data, meta = event.type, event.data, event.meta
            try:
                digest, prev, content = seal_content(
                    prev,
                    seq,
                    event_id,
                    stream,
                    version,
                    event_type,
                    data,
                    {} if meta is None else meta,  # validated: always an object
                    t,
                    occurred,
                    origin,
                )
            except UnicodeEncodeError:
                # Only in-process callers can pass them: JSON decoding refuses lone surrogates.
                raise InvalidValue("strings must be valid Unicode (no lone surrogates)") from None
            size = len(content) + SEALED_EXTRA
            if size > MAX_EVENT_BYTES:
                raise InvalidValue(f"event is {size} bytes encoded, more than {MAX_EVENT_BYTES}")
            if size > CONVEX_SIZE_FLOOR:  # below it the check cannot fail: no body to build
                check_document_size(sealed_body(content, prev))
            rows.append(sealed_row(seq, key, stream, version, event_type, t, digest, content))
            if event_type in projected:
                to_fold.append((seq, event_id, event_type, data, occurred))
            result = AppendResult(seq=seq, event_id=event_id, version=version, duplicate=False)
            results.append(result)
            if event.event_id is not None:
                in_batch[event_id] = (event, result)
            if version == 1:
                new_streams += 1
            versions[stream] = version
        folded.extend(to_fold)
        return _Plan(rows, results, in_batch, versions, new_streams, prev.decode())

    def _known_ids(self, events: Iterable[Prepared]) -> _KnownIds:
        """The client ids' bytes, and which of them the live table holds: one lookup
        for them all (rows of the events being planned are not in the table yet:
        their ids are found in memory)."""
        keys = {e.event_id: event_id_bytes(e.event_id) for e in events if e.event_id is not None}
        return keys, self._live_by_id(list(keys.values())) if keys else {}

    def _live_by_id(self, keys: list[bytes]) -> dict[bytes, tuple[Any, ...]]:
        """The live events among these ids, by id: seq, stream, version, type, payload."""
        found: dict[bytes, tuple[Any, ...]] = {}
        for start in range(0, len(keys), IDS_PER_LOOKUP):
            chunk = keys[start : start + IDS_PER_LOOKUP]
            # padded to a power of two (a repeated id changes nothing): few statement shapes
            size = 1 << (len(chunk) - 1).bit_length()
            chunk += chunk[-1:] * (size - len(chunk))
            for row in self.conn.execute(events_by_ids(size), chunk):
                found[row[0]] = row[1:]
        return found

    def _archived_by_id(self, event_id: str) -> tuple[int, str, int, str, bytes] | None:
        """An archived event as a live one: seq, stream, version, type, a JSON object
        holding its data."""
        row = self.conn.execute(Statements.archived_seq_of, (event_id,)).fetchone()
        if row is None:
            return None
        seq = int(row[0])
        body = self.archives.body_of(seq)
        if body is None:
            return None
        event = _decode_archived(body)
        return seq, event.stream, event.version, event.type, body

    def _stream_version(self, stream: str) -> int:
        version = self._versions.get(stream)
        if version is None:
            row = self.conn.execute(Statements.stream_version, (stream, stream)).fetchone()
            version = int(row[0]) if row[0] is not None else 0
            self._versions[stream] = version
        return version

    # -- compaction steps (atlasd/eventlog/retention.py): each one short transaction --

    def archive_record(self, record: ArchiveRecord, now_ms: int) -> None:
        """Record a written segment; from here reads take its range from the segment."""
        self._compaction_step(retention.record_step, record, now_ms)
        self.archives = self.archives.extended(record)

    def archive_move(self, segment: retention.Segment, chunk: int) -> int:
        """Move the next ``chunk`` live rows of a recorded segment; returns how many."""
        return self._compaction_step(retention.move_step, segment, chunk)

    def archive_vacuum(self, pages: int) -> int:
        """Give up to ``pages`` free pages back; returns the free pages left."""
        return self._compaction_step(retention.vacuum_step, pages)

    def note_compaction(self, last: retention.LastCompaction) -> None:
        """Keep a compaction's figures in the database (``status`` shows them)."""
        self._compaction_step(retention.store_last_compaction, last)
        self.last_compaction = last

    def _compaction_step(self, step: Callable[..., _T], *args: Any) -> _T:
        # The size cap refuses appends, not the compaction that makes room under it.
        self.conn.execute("PRAGMA max_page_count = 2147483646")
        # No fsync of its own: a step lost to a power cut is undone whole (the WAL keeps
        # commit order, and the next FULL commit syncs the step with it), and every step
        # can be lost without harm (atlasd/eventlog/retention.py).
        conn = self.conn
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with translated():  # a step's own transaction has rolled back already
                return step(conn, *args)
        finally:
            try:
                # the cap first: it may be set inside a transaction, the level may not
                self.set_size_cap(self._cap)
                if conn.in_transaction:  # a step whose rollback failed: nothing of it stays
                    conn.execute("ROLLBACK")
                conn.execute(f"PRAGMA synchronous = {self._config.synchronous}")
            except sqlite3.Error:
                # An append must never be acknowledged on a connection left without its
                # fsync: drop it (closing rolls back what is open) and start a fresh one.
                log.exception("compaction_step_restore_failed: reopening the write connection")
                self._reconnect()

    # -- sync bookkeeping ------------------------------------------------------

    def _transaction(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        with transaction(self.conn, size_cap=self._cap_reached) as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    def mark_synced(self, acked_seq: int, rejected: Sequence[Rejection]) -> None:
        now = time.time_ns() // 1_000_000
        self._transaction(
            [(Statements.advance_cursor, (acked_seq,))]
            + [
                (Statements.quarantine_put, (r.seq, r.event_id, r.code, r.message, now))
                for r in rejected
            ]
        )

    def reorigin(self, reason: str) -> tuple[str, str, int]:
        """Continue under a new origin (:func:`atlasd.eventlog.lineage.reorigin`)."""
        old, new, last_seq = reorigin(self.conn, reason)
        with translated():
            self.lineage = read_lineage(self.conn)
        self.origin = new
        return old, new, last_seq

    def requeue_rejected(self) -> int:
        with transaction(self.conn, size_cap=self._cap_reached) as conn:
            count = conn.execute(Statements.quarantine_requeue).rowcount
        return int(count)

    def resolve_retried(
        self, delivered_event_ids: Sequence[str], still_rejected: Sequence[Rejection]
    ) -> None:
        now = time.time_ns() // 1_000_000
        self._transaction(
            [(Statements.quarantine_delete, (event_id,)) for event_id in delivered_event_ids]
            + [
                (Statements.quarantine_update, (r.code, r.message, now, r.event_id))
                for r in still_rejected
            ]
        )

    def db_bytes(self) -> int:
        return db_bytes(self._path)


def _same_content(event: Prepared, stream: str, event_type: str, data: dict[str, Any]) -> bool:
    return (
        event.stream == stream
        and event.type == event_type
        and _canonical(event.data) == _canonical(data)
    )
