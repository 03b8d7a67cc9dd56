"""The event store: group-committed appends, reads, the change signal, views.

One writer task owns the write side (:class:`~atlasd.eventlog.writer.Writer`
on a dedicated thread): appends queue up, and the writer takes everything
queued (up to a cap) into one transaction, so concurrent appenders share one
fsync. Reads use their own aiosqlite connections and never wait for the
writer (WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiosqlite
import msgspec

from atlasd.errors import AtlasdError, BadRequest, Internal, InvalidValue, Unavailable
from atlasd.eventlog.archive import ArchiveRecord, ArchiveSet
from atlasd.eventlog.checkpointer import Checkpointer
from atlasd.eventlog.config import StoreConfig
from atlasd.eventlog.counters import AppendCounters
from atlasd.eventlog.datadir import db_path, ensure_data_dir, secure_db_files
from atlasd.eventlog.lineage import LineageEntry
from atlasd.eventlog.model import ProjectionInfo, StoreStats
from atlasd.eventlog.projections import (
    DEFAULT_LIMIT,
    QueryPage,
    QueryParams,
    ViewSpec,
    build_query,
    page_from_rows,
    view_specs,
)
from atlasd.eventlog.retention import LastCompaction, Segment
from atlasd.eventlog.rows import body_of
from atlasd.eventlog.sql import Statements, translated
from atlasd.eventlog.syncstate import SyncLedger
from atlasd.eventlog.writer import Prepared, Request, Writer
from atlasd.events import AppendResult, Event, NewEvent
from atlasd.events.validation import validate_new_event
from atlasd.packs.registry import PackSet, load_packs

__all__ = ["AppendOutcome", "EventStore", "StreamResult"]

log = logging.getLogger("atlasd.eventlog")

_T = TypeVar("_T")
_decode_event = msgspec.json.Decoder(Event).decode
#: What a queued append comes to: its results, or the error that refused it.
AppendOutcome = list[AppendResult] | AtlasdError
#: A queued append and whom to tell its outcome, on the event loop, once: the future an
#: awaiting appender waits on, or a callback (:meth:`EventStore.submit_append`).
_Done = Callable[[AppendOutcome], None] | asyncio.Future[list[AppendResult]]
_Pending = tuple[Request, _Done]
_Chunks = AsyncIterable[Sequence[NewEvent]] | Iterable[Sequence[NewEvent]]
_END: Any = object()


class StreamResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a streamed append did: counts, not one result per event."""

    #: Events stored by this call.
    appended: int
    #: Events already stored with the same content (or repeated in the input).
    duplicates: int
    #: Seq of the first and last appended event; None when nothing was appended.
    first_seq: int | None
    last_seq: int | None


class EventStore:
    """The append-only log of one data dir, with its views (docs/architecture.md).

    Open with :meth:`open`, close with :meth:`close`. The caller (the daemon)
    holds the data dir's :class:`~atlasd.eventlog.datadir.DataDirLock`.

    Resource handling: one writer thread with one sqlite3 connection, and
    ``config.read_connections`` aiosqlite connections; :meth:`close` commits
    everything queued before it, then closes them all.

    Error handling: every error raised is an :class:`~atlasd.errors.AtlasdError`;
    a request refused (invalid, conflict) changes nothing; a full disk or the
    size cap refuses the appends of that group with ``unavailable`` and later
    appends succeed once there is room again.
    """

    def __init__(
        self,
        config: StoreConfig,
        writer: Writer,
        executor: ThreadPoolExecutor,
        readers: list[aiosqlite.Connection],
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.config = config
        self._writer = writer
        #: Passive WAL checkpoints beside the writer (None when the config turns them off).
        self.checkpointer = checkpointer
        self._executor = executor
        self._readers = readers
        self._next_reader = 0
        # the append queue: a deque plus a wake-up flag costs less per request than asyncio.Queue
        self._pending: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        # while the writer lingers for a group's appenders: resolved once this many are
        # queued (by the submitter that completes the count: no wake-up per append)
        self._gathered: asyncio.Future[None] | None = None
        self._gather_target = 0
        self._closing = False
        self._closed = False
        self._closer: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()
        # held for each use of the writer thread: a group commit, a bookkeeping write, or a
        # whole streamed append (whose transaction spans many calls)
        self._gate = asyncio.Lock()
        self.origin: str = writer.origin
        #: the loaded packs (built-in and the operator's) and their views' specs
        self.packs: PackSet = writer.packs
        self.view_specs: dict[str, ViewSpec] = view_specs(writer.packs)
        self._last_seq = writer.last_seq
        self._streams = writer.streams
        #: What was appended, refused and committed since open (``status``, metrics).
        self.counters = AppendCounters()
        #: The sync's cursor and quarantine (read and written by the sync worker).
        self.sync = SyncLedger(writer, self._fetch, self._on_writer, lambda: self._last_seq)
        #: Compaction steps run on the writer since open, and the longest one (seconds).
        self.compaction_steps = 0
        self.compaction_step_max_s = 0.0
        self._loop = asyncio.get_running_loop()
        self._writer_task = asyncio.create_task(self._write_loop(), name="atlasd-writer")
        self._writer_task.add_done_callback(self._writer_ended)

    @classmethod
    async def open(cls, config: StoreConfig) -> EventStore:
        """Create or migrate the data dir's database and rebuild any stale view.

        Error handling: a bad operator pack raises
        :class:`~atlasd.packs.loader.PackError` (``FILE:LINE: reason``) before
        anything is opened."""
        packs = load_packs(config.packs_dir)
        ensure_data_dir(config.data_dir)
        secure_db_files(config.data_dir)
        path = db_path(config.data_dir)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atlasd-writer")
        writer = Writer(path, config, packs)
        loop = asyncio.get_running_loop()
        readers: list[aiosqlite.Connection] = []
        checkpointer = None
        if config.checkpoint_interval_ms > 0:
            checkpointer = Checkpointer(
                path, config.checkpoint_interval_ms / 1000, config.synchronous
            )
        try:
            await loop.run_in_executor(executor, writer.open)
            if checkpointer is not None:
                await loop.run_in_executor(executor, checkpointer.start)
            with translated():
                for _ in range(max(1, config.read_connections)):
                    reader = await aiosqlite.connect(path, isolation_level=None)
                    readers.append(reader)
                    await reader.execute("PRAGMA query_only = ON")
                    await reader.execute("PRAGMA busy_timeout = 5000")
        except BaseException:
            await cls._dispose(loop, executor, writer, readers, checkpointer)
            raise
        return cls(config, writer, executor, readers, checkpointer)

    @staticmethod
    async def _dispose(
        loop: asyncio.AbstractEventLoop,
        executor: ThreadPoolExecutor,
        writer: Writer,
        readers: list[aiosqlite.Connection],
        checkpointer: Checkpointer | None,
    ) -> None:
        for reader in readers:
            await reader.close()
        if checkpointer is not None:
            await loop.run_in_executor(executor, checkpointer.close)
        await loop.run_in_executor(executor, writer.close)
        executor.shutdown(wait=True)

    async def close(self) -> None:
        """Commit what is queued, then close every connection; idempotent, and safe to
        call from several tasks at once (all return once the store is closed)."""
        if self._closer is None:
            self._closer = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closer)

    async def _close(self) -> None:
        self._closing = True
        self._notify_writer()
        try:
            await self._writer_task
        finally:
            self._closed = True
            self._changed.set()
            async with self._gate:  # a streamed append in progress finishes first
                await self._dispose(
                    asyncio.get_running_loop(),
                    self._executor,
                    self._writer,
                    self._readers,
                    self.checkpointer,
                )

    async def __aenter__(self) -> EventStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def last_seq(self) -> int:
        """The highest committed seq (0 for an empty log)."""
        return self._last_seq

    # -- appends ---------------------------------------------------------------

    async def append(self, event: NewEvent, *, recorded_at: int | None = None) -> AppendResult:
        """Append one event (group-committed with whatever else is queued).

        ``recorded_at`` overrides the store's clock: for imports, tests and the
        shared vectors only; the daemon never passes it from clients.
        """
        # no coroutine of its own for the queueing: one frame less per append
        results = await self._queue([self._checked(event)], recorded_at)
        return results[0]

    async def append_batch(
        self,
        events: Sequence[NewEvent],
        *,
        recorded_at: int | None = None,
        check_schema: bool = True,
    ) -> list[AppendResult]:
        """Append events atomically, in order: all are stored or none.

        ``expected_version`` of each event counts the batch's earlier events; a
        repeated ``event_id`` with the same content resolves to its first
        occurrence (``duplicate: true``), with other content the whole batch
        fails with ``event_id_conflict``.

        ``check_schema=False`` skips the packs' append-time schema (the other checks
        stay): only for replaying the shared vectors that pin how a log written
        before packs existed projects; nothing reachable by clients passes it.
        """
        if not events:
            return []
        packs = self.packs if check_schema else None
        try:
            prepared = [_prepare(event, i, packs) for i, event in enumerate(events)]
        except AtlasdError as error:
            self.counters.refuse(error, len(events))
            raise
        return await self._queue(prepared, recorded_at)

    def submit_append(self, event: NewEvent, done: Callable[[AppendOutcome], None]) -> None:
        """Queue one event like :meth:`append`, without a coroutine or a future: for
        callers on the event loop that answer from a callback (the daemon's per-request
        path).

        ``done`` is called once, on the event loop, right after the event's group
        commit (its fsync): with a one-item result list, or with the
        :class:`~atlasd.errors.AtlasdError` that refused it at commit time (a
        conflict, a full disk). The whole group is told in one pass of the writer
        task, with no per-append future or loop callback.

        Error handling: an invalid event or a closing store raises here, and nothing
        is queued. ``done`` must not raise (an exception from it is logged).
        """
        prepared = self._checked(event)
        if self._closing:
            raise Unavailable("the store is closing; appends are refused")
        self._pending.append((Request(events=[prepared], recorded_at=None), done))
        self._notify_writer()

    def _notify_writer(self) -> None:
        """Tell the writer task there is work: at once when idle; when it lingers for a
        group, only once the group is complete (or the store closes)."""
        gathered = self._gathered
        if gathered is None:
            self._wake.set()
        elif (len(self._pending) >= self._gather_target or self._closing) and not gathered.done():
            gathered.set_result(None)

    def _checked(self, event: NewEvent) -> Prepared:
        """One event validated, a refusal counted."""
        try:
            return _prepare(event, None, self.packs)
        except AtlasdError as error:
            self.counters.refuse(error, 1)
            raise

    def _queue(
        self, events: list[Prepared], recorded_at: int | None
    ) -> asyncio.Future[list[AppendResult]]:
        """Queue one request; the future its outcome settles. The future itself is queued
        (no callback made per append) and made on the loop the store was opened on,
        without looking that loop up each time."""
        if self._closing:
            raise Unavailable("the store is closing; appends are refused")
        if recorded_at is not None and (type(recorded_at) is not int or recorded_at < 0):
            raise InvalidValue("recorded_at must be a non-negative integer")
        future: asyncio.Future[list[AppendResult]] = self._loop.create_future()
        self._pending.append((Request(events=events, recorded_at=recorded_at), future))
        self._notify_writer()
        return future

    async def _write_loop(self) -> None:
        """The writer task: take everything queued and have the writer thread commit it as
        one group (the thread answers it: :meth:`_commit_group`), one group at a time."""
        loop = asyncio.get_running_loop()
        max_requests = self.config.group_max_requests
        max_events = self.config.group_max_events
        pending = self._pending
        linger = self.config.group_linger_ms / 1000
        last_group = 0
        group: list[_Pending] = []
        while True:
            if not pending:
                if self._closing:
                    return  # everything queued before close is committed
                self._wake.clear()
                await self._wake.wait()
                continue
            if linger > 0 and len(pending) < last_group and not self._closing:
                await self._gather_appenders(last_group, loop.time() + linger)
            # the last group is freed once the next one is handed over (below): its
            # validated events go while the writer thread wakes up, not before it is woken
            previous, group = group, [pending.popleft()]
            events = len(group[0][0].events)
            while pending and len(group) < max_requests and events < max_events:
                item = pending.popleft()
                group.append(item)
                events += len(item[0].events)
            last_group = len(group)
            async with self._gate:
                # The writer thread answers the group itself (see _commit_group): the
                # appenders wake one loop pass after the commit, not after a relay of
                # futures through this task.
                committed: asyncio.Future[None] = loop.create_future()
                self._executor.submit(self._commit_group, group, events, committed)
                del previous
                await committed

    def _commit_group(
        self, group: list[_Pending], events: int, committed: asyncio.Future[None]
    ) -> None:
        """On the writer thread: commit one group, then hand its outcomes to the loop in
        one callback that answers everyone and lets the writer task go on."""
        started = time.perf_counter()
        before = self._writer.last_seq
        outcomes: list[list[AppendResult] | AtlasdError]
        took: float | None = None  # None: no commit to count
        try:
            outcomes = self._writer.commit_group([request for request, _ in group])
            took = time.perf_counter() - started
        except Exception as exc:  # a bug: answer everyone rather than hang them
            log.exception("append_group_failed requests=%d", len(group))
            error = Internal(f"append failed: {exc!r}")
            outcomes = [error] * len(group)
        except BaseException as exc:
            self._loop.call_soon_threadsafe(_fail, committed, exc)
            raise
        last_seq, streams = self._writer.last_seq, self._writer.streams
        self._loop.call_soon_threadsafe(
            self._answer, group, events, outcomes, before, last_seq, streams, took, committed
        )

    def _answer(
        self,
        group: list[_Pending],
        events: int,
        outcomes: list[list[AppendResult] | AtlasdError],
        before: int,
        last_seq: int,
        streams: int,
        took: float | None,
        committed: asyncio.Future[None],
    ) -> None:
        """On the loop: a committed group's position, counters and answers. Whatever
        happens here, the writer task is let go: with this method's error (a bug), which
        ends the task and fails what is queued, rather than wait forever."""
        try:
            counters = self.counters
            if took is not None:
                counters.record_commit(took)
            self._last_seq = last_seq
            self._streams = streams
            if self.checkpointer is not None:
                self.checkpointer.note_commit(len(group))
            # counted per group: the log grew by the appended events, the rest of those
            # answered with results are duplicates
            answered = events
            for (request, done), outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, AtlasdError):
                    counters.refuse(outcome, len(request.events))
                    answered -= len(request.events)
                _tell(done, outcome)
            appended = last_seq - before
            counters.record_appends(appended, answered - appended)
            self._changed.set()
            self._changed = asyncio.Event()
        except BaseException as exc:
            _fail(committed, exc)
            raise
        # after the answers: an appender that queues again at once finds the writer task
        # about to take its request in the same pass
        if not committed.done():
            committed.set_result(None)

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        """If the writer task dies of a bug, fail every queued append and refuse new
        ones, rather than leave appenders waiting for an answer that never comes."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("append_writer_failed error=%r", error)
        self._closing = True
        stranded = list(self._pending)
        self._pending.clear()
        for _, done in stranded:
            _tell(done, Internal(f"the store's writer failed: {error!r}"))

    async def _gather_appenders(self, expected: int, deadline: float) -> None:
        """Wait until ``expected`` requests are queued, the deadline passes or the store
        closes: the commit delay that keeps many waiting appenders in one group."""
        if len(self._pending) >= expected or self._closing:
            return
        # one future and one timer per group, not a wake-up (and a wait_for) per append
        loop = asyncio.get_running_loop()
        gathered = self._gathered = loop.create_future()
        self._gather_target = expected
        timer = loop.call_at(deadline, _resolve, gathered)
        try:
            await gathered
        finally:
            timer.cancel()
            self._gathered = None

    async def append_stream(
        self, chunks: _Chunks, *, recorded_at: int | None = None
    ) -> StreamResult:
        """Append every event of ``chunks`` in ONE transaction: all are stored or none.

        For inputs too large to hold at once (the spool's files): chunks are taken
        one at a time as they are written, so memory is bounded by one chunk plus
        the views' row cache, whatever the total. Idempotency, ``expected_version``
        and conflicts are as in :meth:`append_batch` over the concatenated events
        (a validation error's path counts across chunks: ``events[i].``). Every
        event gets the same ``recorded_at`` (the time the stream began, unless
        overridden). A synchronous iterator is advanced on the writer thread, an
        asynchronous one on the event loop.

        The stream holds the writer from its first chunk to its commit: other
        appends (and sync bookkeeping writes) queue up meanwhile and commit after
        it. Readers see nothing of it until it commits.

        Error handling: any error (invalid event, conflict, size, disk full, an
        exception raised by ``chunks`` itself, cancellation) rolls back the whole
        stream and is raised; nothing of it is stored.
        """
        if self._closing:
            raise Unavailable("the store is closing; appends are refused")
        if recorded_at is not None and (type(recorded_at) is not int or recorded_at < 0):
            raise InvalidValue("recorded_at must be a non-negative integer")
        writer = self._writer
        appended = duplicates = first = index = 0
        async with self._gate:
            if self._closed:
                raise Unavailable("the store is closed")
            await self._run(writer.stream_begin)
            committed = False
            try:
                async with contextlib.aclosing(self._each_chunk(chunks)) as each:
                    async for chunk in each:
                        if not _is_sequence(chunk):
                            kind = type(chunk).__name__
                            raise BadRequest(
                                f"each chunk must be a sequence of NewEvent, got {kind}"
                            )
                        prepared = [
                            _prepare(ev, index + i, self.packs) for i, ev in enumerate(chunk)
                        ]
                        index += len(prepared)
                        if not prepared:
                            continue
                        request = Request(events=prepared, recorded_at=recorded_at)
                        added, repeated, first_seq = await self._run(writer.stream_chunk, request)
                        appended += added
                        duplicates += repeated
                        if first == 0:
                            first = first_seq
                await self._run(writer.stream_commit)
                committed = True
            finally:
                if not committed:
                    # queued behind any call still running on the writer thread; the gate is
                    # held until the rollback is done
                    await asyncio.shield(self._run(writer.stream_abort))
            self._last_seq = writer.last_seq
            self._streams = writer.streams
        self.counters.record_appends(appended, duplicates)
        if appended:
            self._changed.set()
            self._changed = asyncio.Event()
        return StreamResult(
            appended=appended,
            duplicates=duplicates,
            first_seq=first or None,
            last_seq=first + appended - 1 if appended else None,
        )

    async def _each_chunk(self, chunks: _Chunks) -> AsyncGenerator[Sequence[NewEvent], None]:
        if isinstance(chunks, AsyncIterable):
            async for chunk in chunks:
                yield chunk
            return
        if not _is_iterable(chunks):
            raise BadRequest(
                f"chunks must be an iterable of sequences, got {type(chunks).__name__}"
            )
        it = iter(chunks)
        while (chunk := await self._run(next, it, _END)) is not _END:
            yield chunk

    async def _run(self, fn: Any, *args: Any) -> Any:
        """Call ``fn`` on the writer thread (the caller holds the gate)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def wait_for_append(self, after_seq: int, timeout: float | None = None) -> int:
        """Wait until ``last_seq > after_seq`` and return ``last_seq``.

        On timeout, or when the store closes, it returns ``last_seq`` as it is
        (compare it with ``after_seq``) rather than raising.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._last_seq <= after_seq and not self._closed:
            changed = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                break
        return self._last_seq

    # -- reads -----------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if self._closed:
            raise Unavailable("the store is closed")
        reader = self._readers[self._next_reader]
        self._next_reader = (self._next_reader + 1) % len(self._readers)
        with translated():
            return list(await reader.execute_fetchall(sql, params))

    async def read(
        self,
        from_seq: int = 0,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events with seq > ``from_seq`` in seq order, optionally of one stream and of
        some types (None or empty: all types), at most ``limit``."""
        rows = await self._read_rows(from_seq, stream, types, limit)
        return [_decode_event(body) for _, body in rows]

    async def read_raw(
        self, from_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]:
        """``(seq, encoded event)`` after ``from_seq``: the stored JSON, not re-encoded.

        ``max_bytes`` bounds the sum of the bodies' lengths: reading stops before
        the event that would exceed it, but at least one event is returned when
        there is one (so a reader always makes progress, even past an event
        larger than its budget).
        """
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 0):
            raise BadRequest(f"max_bytes must be a non-negative integer, got {max_bytes!r:.40}")
        while True:
            archives = self._writer.archives
            rows = await self._read_raw_once(from_seq, limit, max_bytes, archives)
            if self._writer.archives is archives:
                return rows
            # a compaction recorded a segment meanwhile: its rows may have left the
            # live table after this read's archived part was taken; read again

    async def _read_raw_once(
        self, from_seq: int, limit: int, max_bytes: int | None, archives: ArchiveSet
    ) -> list[tuple[int, bytes]]:
        if max_bytes is None:
            rows = await self._read_rows(from_seq, None, None, limit, archives=archives)
            return [(int(seq), bytes(body)) for seq, body in rows]
        if from_seq < archives.last_seq:
            # archived bodies are in memory once their segment is read: trim them here
            rows = await self._read_rows(from_seq, None, None, limit, archives=archives)
            kept: list[tuple[int, bytes]] = []
            total = 0
            for seq, body in rows:
                total += len(body)
                if kept and total > max_bytes:
                    break
                kept.append((int(seq), bytes(body)))
            return kept
        # Sizes first (length() of a blob reads its header, not its pages), then only the
        # bodies that fit: a small budget never loads a thousand large events.
        sizes = await self._read_rows(
            from_seq, None, None, limit, Statements.read_sizes, archives=archives
        )
        if not sizes:
            return []
        last, total = int(sizes[0][0]), int(sizes[0][1])
        for seq, size in sizes[1:]:
            total += size
            if total > max_bytes:
                break
            last = int(seq)
        rows = await self._fetch(Statements.read_raw_until, (from_seq, last))
        return [(int(row[0]), body_of(*row)) for row in rows]

    async def _read_rows(
        self,
        from_seq: int,
        stream: str | None,
        types: Sequence[str] | None,
        limit: int,
        columns: str = Statements.row,
        *,
        archives: ArchiveSet | None = None,
    ) -> list[Any]:
        """``(seq, stored event)`` in seq order (or ``columns`` of the live rows): archived
        ones from ``archives`` (default: the current set, read again if a segment is
        recorded meanwhile), then live ones. With ``archives`` given the caller checks
        for a moved cut (see :meth:`read_raw`)."""
        if type(from_seq) is not int or from_seq < 0:
            raise BadRequest(f"from_seq must be a non-negative integer, got {from_seq!r:.40}")
        if type(limit) is not int or limit < 0:
            raise BadRequest(f"limit must be a non-negative integer, got {limit!r:.40}")
        if limit == 0:
            return []
        where = ["seq > ?"]
        params: list[Any] = [from_seq]
        if stream is not None:
            if type(stream) is not str:
                raise BadRequest("stream must be a string")
            where.append("stream = ?")
            params.append(stream)
        if types:
            if isinstance(types, str) or not all(type(t) is str for t in types):
                raise BadRequest("types must be a list of strings")
            unique = list(dict.fromkeys(types))
            where.append(f"type IN ({', '.join('?' * len(unique))})")
            params.extend(unique)
        sql = f"SELECT {columns} FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        while True:
            archived: list[Any] = []
            cut = archives or self._writer.archives
            if from_seq < cut.last_seq:
                # archived events come from their segments, then the live table goes on
                archived = await asyncio.to_thread(cut.read, from_seq, stream, types, limit)
                if len(archived) >= limit:
                    return archived
            live_params = [max(from_seq, cut.last_seq), *params[1:], limit - len(archived)]
            live = await self._fetch(sql, live_params)
            if archives is not None or self._writer.archives is cut:
                if columns == Statements.row:
                    live = [(row[0], body_of(*row)) for row in live]
                return archived + live
            # a compaction recorded a segment meanwhile (see read_raw): read again

    async def iter_events(
        self,
        from_seq: int = 0,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        chunk: int = 1000,
    ) -> AsyncIterator[Event]:
        """Every event after ``from_seq`` up to the end of the log, read ``chunk`` at a time."""
        cursor = from_seq
        while True:
            events = await self.read(cursor, stream, types, chunk)
            for event in events:
                yield event
            if len(events) < chunk:
                return
            cursor = events[-1].seq

    async def query(
        self,
        view: str,
        filter: Mapping[str, Any] | None = None,
        limit: int = DEFAULT_LIMIT,
        order: str = "asc",
    ) -> list[dict[str, Any]]:
        """The first page of rows of a view (docs/views.md), in creation order or
        newest first; :meth:`query_page` for the other pages and orders."""
        page = await self.query_page(
            QueryParams(view=view, filter=filter, limit=limit, order=order)
        )
        return page.rows

    async def query_page(self, params: QueryParams) -> QueryPage:
        """One page of a view's rows and the cursor to the next (docs/views.md)."""
        segments, plan = build_query(
            params.view,
            params.filter,
            params.limit,
            params.order,
            order_by=params.order_by,
            after=params.after,
            since=params.since,
            until=params.until,
            specs=self.view_specs,
        )
        rows: list[Any] = []
        for sql, args in segments:
            rows += await self._fetch(sql, [*args, plan.limit + 1 - len(rows)])
            if len(rows) > plan.limit:
                break
        return page_from_rows(plan, rows)

    async def stats(self) -> StoreStats:
        rows = await self._fetch(Statements.projections, ())
        return StoreStats(
            events=self._last_seq,
            streams=self._streams,
            last_seq=self._last_seq,
            db_bytes=self._writer.db_bytes(),
            projections=[
                ProjectionInfo(name=name, version=version, checkpoint=checkpoint)
                for name, version, checkpoint in rows
            ],
        )

    # -- writer-side bookkeeping --------------------------------------------------------

    async def _on_writer(self, fn: Any, *args: Any) -> Any:
        async with self._gate:
            if self._closed:
                raise Unavailable("the store is closed")
            future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            return await asyncio.shield(future)

    @property
    def lineage(self) -> list[LineageEntry]:
        """The origins this log had before its current one, oldest first."""
        return list(self._writer.lineage)

    async def reorigin(self, reason: str) -> str:
        """Continue the log under a new origin and rewind the sync cursor to 0
        (docs/operations.md, "Restore"); returns the new origin."""
        _old, new, _last = await self._on_writer(self._writer.reorigin, reason)
        self.origin = new
        return str(new)

    # -- compaction steps (atlasd/eventlog/autocompact.py) ------------------------------

    @property
    def archives(self) -> ArchiveSet:
        """The recorded archive segments (a new object each time one is recorded)."""
        return self._writer.archives

    async def archive_record(self, record: ArchiveRecord, now_ms: int) -> None:
        """Record a written segment (one short transaction on the writer)."""
        await self._compaction_step(self._writer.archive_record, record, now_ms)

    async def archive_move(self, segment: Segment, chunk: int) -> int:
        """Move up to ``chunk`` live rows of a recorded segment; returns how many."""
        moved: int = await self._compaction_step(self._writer.archive_move, segment, chunk)
        return moved

    async def archive_vacuum(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the file system; returns those left."""
        left: int = await self._compaction_step(self._writer.archive_vacuum, pages)
        return left

    async def note_compaction(self, last: LastCompaction) -> None:
        """Keep a compaction's figures (``status``)."""
        await self._compaction_step(self._writer.note_compaction, last)

    @property
    def last_compaction(self) -> LastCompaction | None:
        """The last compaction that moved or freed anything, online or offline."""
        return self._writer.last_compaction

    async def _compaction_step(self, fn: Any, *args: Any) -> Any:
        """One step on the writer, between group commits; its time goes to the counters."""
        loop = asyncio.get_running_loop()
        async with self._gate:
            if self._closing or self._closed:
                raise Unavailable("the store is closing")
            started = loop.time()
            try:
                return await asyncio.shield(loop.run_in_executor(self._executor, fn, *args))
            finally:
                took = loop.time() - started
                self.compaction_steps += 1
                self.compaction_step_max_s = max(self.compaction_step_max_s, took)

    async def set_size_cap(self, max_db_bytes: int | None) -> None:
        """Change the size cap of a running store (None: no cap)."""
        await self._on_writer(self._writer.set_size_cap, max_db_bytes)


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _is_iterable(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes))


def _tell(done: _Done, outcome: AppendOutcome) -> None:
    """Give one append its outcome: settle its future, or call its callback (a failing
    callback costs the others nothing)."""
    if isinstance(done, asyncio.Future):
        if done.done():
            return  # the appender was cancelled; the append itself stands
        if isinstance(outcome, AtlasdError):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
        return
    try:
        done(outcome)
    except Exception:
        log.exception("append_callback_failed")


def _fail(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _prepare(event: NewEvent, index: int | None, packs: PackSet | None) -> Prepared:
    """Validate a client's event before it is queued: what Convex can store, then the
    pack schema of its type (``packs`` None: no schema check). ``index``: its place in
    a batch, named in the error (``events[3].data.x: ...``); None for a lone event."""
    if not isinstance(event, NewEvent):
        raise BadRequest(
            f"{'event' if index is None else f'events[{index}].'} must be a NewEvent,"
            f" got {type(event).__name__}"
        )
    try:
        valid = validate_new_event(event)
        if packs is not None:
            packs.check_event(valid.type, valid.data)
    except InvalidValue as error:
        if index is None:
            raise
        raise InvalidValue(f"events[{index}].{error.message}", **error.extra) from None
    return valid
