"""Request handlers: one method per one-shot op, each returning the response line.

``subscribe`` and ``watch`` are streams and live in :mod:`atlasd.daemon.streams`.

Error handling: :meth:`Handlers.handle` turns every
:class:`~atlasd.errors.AtlasdError` into its failure line, and anything else
into ``internal`` (logged with its traceback), so a handler never takes a
connection or the daemon down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

import atlasd
from atlasd import wire
from atlasd.config import Config
from atlasd.daemon.budget import ByteBudget
from atlasd.daemon.hub import Hub
from atlasd.daemon.log import log_event
from atlasd.daemon.spool import spool_counts
from atlasd.errors import AtlasdError, BadRequest, Internal, Unavailable
from atlasd.eventlog.autocompact import Compactor
from atlasd.eventlog.capacity import cap_state
from atlasd.eventlog.integrity import IntegrityReport
from atlasd.eventlog.projections import DEFAULT_LIMIT, QueryPage, QueryParams
from atlasd.eventlog.store import EventStore
from atlasd.events import AppendResult
from atlasd.redact import redact
from atlasd.reports import CHECKING

if TYPE_CHECKING:  # the worker (and httpx) load only when sync is on
    from atlasd.sync.worker import SyncWorker

__all__ = ["DaemonState", "Handlers", "normalize_types", "read_page"]

log = logging.getLogger("atlasd.daemon")

_encoder = msgspec.json.Encoder()

SYNC_DISABLED_REASON = "sync disabled: set CONVEX_URL or ATLASD_INGEST_URL"
#: Encoded bytes of events in one ``read`` page (and one catch-up page of a
#: subscription): a page stops before passing it; its ``last_seq`` says where to go on.
READ_PAGE_BYTES = 4 * 1024 * 1024
#: Bytes of watch answers the daemon writes at once, across every watch: a watch whose
#: answer would go past it waits (a watcher that does not read is cut off meanwhile).
WATCH_BYTES = 32 * 1024 * 1024
#: Events fetched per step of a filtered page.
_FILTERED_STEP = 256

#: How many quarantined events ``status`` lists with their reasons (oldest first);
#: ``sync.rejected`` counts them all.
QUARANTINE_SHOWN = 50


@dataclass
class DaemonState:
    """What handlers share: the store, the hub, the sync worker and counters."""

    config: Config
    store: EventStore
    hub: Hub
    sync: SyncWorker | None = None
    started: float = field(default_factory=time.monotonic)
    connections: int = 0
    stopping: bool = False
    #: The daemon's own compaction (None: retention off).
    compactor: Compactor | None = None
    #: The start-up page check's outcome (None while it runs).
    integrity: IntegrityReport | None = None
    #: Bytes of watch answers being written, across every watch (see streams).
    watch_bytes: ByteBudget = field(default_factory=lambda: ByteBudget(WATCH_BYTES))
    #: Watch queries materialised at once (their rows are the largest objects held).
    watch_queries: anyio.Semaphore = field(default_factory=lambda: anyio.Semaphore(2))


def normalize_types(types: list[str] | None) -> frozenset[str] | None:
    """``types`` filter: None or [] mean every type."""
    return frozenset(types) if types else None


async def read_page(
    store: EventStore,
    from_seq: int,
    stream: str | None,
    types: frozenset[str] | None,
    limit: int,
    max_bytes: int = READ_PAGE_BYTES,
) -> tuple[list[bytes], int]:
    """Encoded events after ``from_seq`` and the cursor to continue from.

    A page ends after ``limit`` events or before the event that would take it
    past ``max_bytes`` (it holds at least one event when there is one). The
    cursor is then the last event's seq; otherwise it is the log's head as it
    was before the read (everything up to it has been scanned).
    """
    head = store.last_seq
    if stream is None and types is None:
        rows = await store.read_raw(from_seq, limit, max_bytes)
        raws = [raw for _, raw in rows]
        last = rows[-1][0] if rows else from_seq
        # fewer than asked below the head: the byte budget ended the page
        full = len(raws) >= limit or (bool(rows) and last < head)
    else:
        raws, last, full = await _read_filtered(store, from_seq, stream, types, limit, max_bytes)
    cursor = last if full else max(from_seq, head, last)
    return raws, cursor


async def _read_filtered(
    store: EventStore,
    from_seq: int,
    stream: str | None,
    types: frozenset[str] | None,
    limit: int,
    max_bytes: int,
) -> tuple[list[bytes], int, bool]:
    """A filtered page read in steps, so a byte budget never loads ``limit`` large events."""
    raws: list[bytes] = []
    total = 0
    last = from_seq
    while len(raws) < limit:
        step = min(limit - len(raws), _FILTERED_STEP)
        events = await store.read(
            from_seq=last,
            stream=stream,
            types=sorted(types) if types is not None else None,
            limit=step,
        )
        for event in events:
            raw = _encoder.encode(event)
            if raws and total + len(raw) > max_bytes:
                return raws, last, True
            raws.append(raw)
            total += len(raw)
            last = event.seq
        if len(events) < step:
            break
    return raws, last, len(raws) >= limit


class Handlers:
    """Executes one-shot requests against the daemon's state."""

    def __init__(self, state: DaemonState) -> None:
        self.state = state
        self.store = state.store

    async def handle(self, request: wire.Request) -> bytes:
        """The response line for ``request`` (never raises, except cancellation)."""
        try:
            if self.state.stopping and isinstance(request, (wire.Append, wire.AppendBatch)):
                # Reached only by requests read after shutdown began.
                raise Unavailable("daemon shutting down")
            result = await self._dispatch(request)
        except AtlasdError as exc:
            return wire.encode_error(request.id, exc)
        except Exception as exc:
            log_event(
                log,
                logging.ERROR,
                "request_failed",
                op=type(request).__name__.lower(),
                error=f"{type(exc).__name__}: {exc}",
                exc_info=True,
            )
            return wire.encode_error(request.id, Internal(redact(f"{type(exc).__name__}: {exc}")))
        return wire.encode_ok(request.id, result)

    def submit_append(self, request: wire.Append, answer: Callable[[bytes], None]) -> None:
        """Start a single append without a task; ``answer`` gets its response line,
        maybe before this returns (a refused event), else from the commit's callback.

        Same answers as :meth:`handle`; the append commits even if nobody is left
        to answer.
        """
        try:
            if self.state.stopping:
                raise Unavailable("daemon shutting down")
            future = self.store.submit_append(request)
        except Exception as exc:
            answer(self._failure(request, exc, in_handler=True))
            return

        def done(future: asyncio.Future[list[AppendResult]]) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is not None:
                answer(self._failure(request, exc, in_handler=False))
            else:
                answer(wire.encode_ok(request.id, future.result()[0]))

        future.add_done_callback(done)

    def _failure(self, request: wire.Request, exc: BaseException, *, in_handler: bool) -> bytes:
        if isinstance(exc, AtlasdError):
            return wire.encode_error(request.id, exc)
        log_event(
            log,
            logging.ERROR,
            "request_failed",
            op=type(request).__name__.lower(),
            error=f"{type(exc).__name__}: {exc}",
            exc_info=in_handler,  # the traceback is at hand only inside the except block
        )
        return wire.encode_error(request.id, Internal(redact(f"{type(exc).__name__}: {exc}")))

    async def _dispatch(self, request: wire.Request) -> Any:
        match request:
            case wire.Append():
                return await self.store.append(request)
            case wire.AppendBatch():
                results = await self.store.append_batch(request.events)
                return {"results": results}
            case wire.Read():
                return await self.read(request)
            case wire.Query():
                page = await self.query_page(request)
                return wire.QueryPage(page.rows, page.next)
            case wire.Ping():
                return {"version": atlasd.__version__, "origin": self.store.origin}
            case wire.Status():
                # the sync part carries remote errors, which might echo the token
                return msgspec.Raw(redact(_encoder.encode(await self.status()).decode()).encode())
            case wire.SyncNow():
                return await self.sync_now(request)
        raise BadRequest(f"op {type(request).__name__.lower()} cannot be used here")

    async def read(self, request: wire.Read) -> wire.ReadResult[msgspec.Raw]:
        if request.from_seq < 0:
            raise BadRequest("from_seq must be >= 0")
        limit = wire.DEFAULT_READ_LIMIT if request.limit is None else request.limit
        if not 1 <= limit <= wire.MAX_READ_LIMIT:
            raise BadRequest(f"limit must be between 1 and {wire.MAX_READ_LIMIT}")
        raws, cursor = await read_page(
            self.store, request.from_seq, request.stream, normalize_types(request.types), limit
        )
        return wire.ReadResult(events=[msgspec.Raw(raw) for raw in raws], last_seq=cursor)

    async def query(self, request: wire.Query | wire.Watch) -> list[dict[str, Any]]:
        return (await self.query_page(request)).rows

    async def query_page(self, request: wire.Query | wire.Watch) -> QueryPage:
        return await self.store.query_page(
            QueryParams(
                view=request.view,
                filter=request.filter,
                limit=DEFAULT_LIMIT if request.limit is None else request.limit,
                order="asc" if request.order is None else request.order,
                order_by=request.order_by,
                after=request.after,
                since=request.since,
                until=request.until,
            )
        )

    async def status(self) -> wire.StatusReport:
        stats = await self.store.stats()
        state = self.state
        max_db_bytes = state.config.max_db_bytes
        return wire.StatusReport(
            origin=self.store.origin,
            origin_lineage=self.store.lineage,
            version=atlasd.__version__,
            pid=os.getpid(),
            last_seq=stats.last_seq,
            events=stats.events,
            streams=stats.streams,
            sync=await self.sync_status(),
            projections=stats.projections,
            db_bytes=stats.db_bytes,
            # alerts well before appends are refused at the cap
            cap=None if max_db_bytes is None else cap_state(stats.db_bytes, max_db_bytes),
            uptime_s=round(time.monotonic() - state.started, 3),
            counters=self.store.counters.snapshot(),
            spool=spool_counts(state.config.spool_dir),
            connections=state.connections,
            subscribers=len(state.hub.subscribers),
            watchers=len(state.hub.watchers),
            socket=str(state.config.socket),
            data_dir=str(state.config.data_dir),
            integrity=state.integrity or CHECKING,
            compaction=self._compaction(),
        )

    def _compaction(self) -> wire.CompactionStatus:
        """Retention: whether the daemon compacts, and the last compaction's figures."""
        store, compactor = self.store, self.state.compactor
        last = store.last_compaction
        return wire.CompactionStatus(
            auto=compactor is not None,
            running=compactor is not None and compactor.running,
            last_at_ms=None if last is None else last.at_ms,
            last_events=None if last is None else last.events,
            last_bytes_freed=None if last is None else last.bytes_freed,
            last_by=None if last is None else last.by,
            steps=store.compaction_steps,
            step_max_ms=round(store.compaction_step_max_s * 1000, 3),
        )

    async def sync_status(self) -> wire.SyncStatus:
        status = await self._sync_figures()
        if not status.rejected:
            return status
        shown = await self.store.sync.rejected_events(QUARANTINE_SHOWN)
        return msgspec.structs.replace(status, quarantine=shown)

    async def _sync_figures(self) -> wire.SyncStatus:
        if self.state.sync is not None:
            return await self.state.sync.status()
        sync = await self.store.sync.state()
        return wire.SyncStatus(
            state="disabled",
            acked_seq=sync.acked_seq,
            pending=sync.pending,
            oldest_pending_ms=sync.oldest_pending_ms,
            rejected=sync.rejected,
            last_error=None,
            next_attempt_ms=None,
        )

    async def sync_now(self, request: wire.SyncNow) -> wire.SyncNowResult:
        worker = self.state.sync
        if worker is None:
            return wire.SyncNowResult(triggered=False, reason=SYNC_DISABLED_REASON)
        requeued = await worker.retry_rejected() if request.retry_rejected else None
        result = await worker.sync_now(request.wait)
        if requeued is not None:
            result = msgspec.structs.replace(result, requeued=requeued)
        return result
