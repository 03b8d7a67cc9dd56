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
from typing import Any

import msgspec

import atlasd
from atlasd import wire
from atlasd.config import Config
from atlasd.daemon.hub import Hub
from atlasd.daemon.log import log_event
from atlasd.daemon.protocols import Store, SyncControl
from atlasd.daemon.spool import spool_counts
from atlasd.errors import AtlasdError, BadRequest, Internal, Unavailable
from atlasd.eventlog.model import AppendResult

__all__ = ["DaemonState", "Handlers", "normalize_types", "read_page"]

log = logging.getLogger("atlasd.daemon")

_encoder = msgspec.json.Encoder()

SYNC_DISABLED_REASON = "sync disabled: set CONVEX_URL or ATLASD_INGEST_URL"


@dataclass
class DaemonState:
    """What handlers share: the store, the hub, the sync worker and counters."""

    config: Config
    store: Store
    hub: Hub
    sync: SyncControl | None = None
    started: float = field(default_factory=time.monotonic)
    connections: int = 0
    stopping: bool = False


def normalize_types(types: list[str] | None) -> frozenset[str] | None:
    """``types`` filter: None or [] mean every type."""
    return frozenset(types) if types else None


async def read_page(
    store: Store,
    from_seq: int,
    stream: str | None,
    types: frozenset[str] | None,
    limit: int,
) -> tuple[list[bytes], int]:
    """Encoded events after ``from_seq`` and the cursor to continue from.

    The cursor is the last event's seq when the page is full, else the log's
    head as it was before the read (everything up to it has been scanned).
    """
    head = store.last_seq
    if stream is None and types is None:
        rows = await store.read_raw(from_seq, limit)
        raws = [raw for _, raw in rows]
        last = rows[-1][0] if rows else from_seq
    else:
        events = await store.read(
            from_seq=from_seq,
            stream=stream,
            types=sorted(types) if types is not None else None,
            limit=limit,
        )
        raws = [_encoder.encode(event) for event in events]
        last = events[-1].seq if events else from_seq
    cursor = last if len(raws) >= limit else max(from_seq, head, last)
    return raws, cursor


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
            return wire.encode_error(request.id, Internal(f"{type(exc).__name__}: {exc}"))
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
            future = self.store.submit_append(request.to_new_event())
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
        return wire.encode_error(request.id, Internal(f"{type(exc).__name__}: {exc}"))

    async def _dispatch(self, request: wire.Request) -> Any:
        match request:
            case wire.Append():
                return await self.store.append(request.to_new_event())
            case wire.AppendBatch():
                results = await self.store.append_batch(
                    [event.to_new_event() for event in request.events]
                )
                return {"results": results}
            case wire.Read():
                return await self.read(request)
            case wire.Query():
                return {"rows": await self.query(request)}
            case wire.Ping():
                return {"version": atlasd.__version__, "origin": self.store.origin}
            case wire.Status():
                return await self.status()
            case wire.SyncNow():
                return await self.sync_now(request)
        raise BadRequest(f"op {type(request).__name__.lower()} cannot be used here")

    async def read(self, request: wire.Read) -> dict[str, Any]:
        if request.from_seq < 0:
            raise BadRequest("from_seq must be >= 0")
        limit = wire.DEFAULT_READ_LIMIT if request.limit is None else request.limit
        if not 1 <= limit <= wire.MAX_READ_LIMIT:
            raise BadRequest(f"limit must be between 1 and {wire.MAX_READ_LIMIT}")
        raws, cursor = await read_page(
            self.store, request.from_seq, request.stream, normalize_types(request.types), limit
        )
        return {"events": [msgspec.Raw(raw) for raw in raws], "last_seq": cursor}

    async def query(self, request: wire.Query | wire.Watch) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if request.limit is not None:
            if request.limit < 1:
                raise BadRequest("limit must be >= 1")
            kwargs["limit"] = request.limit
        if request.order is not None:
            kwargs["order"] = request.order
        return await self.store.query(request.view, request.filter, **kwargs)

    async def status(self) -> dict[str, Any]:
        stats = await self.store.stats()
        state = self.state
        return {
            "origin": self.store.origin,
            "version": atlasd.__version__,
            "pid": os.getpid(),
            "last_seq": stats.last_seq,
            "events": stats.events,
            "streams": stats.streams,
            "sync": await self.sync_status(),
            "projections": stats.projections,
            "db_bytes": stats.db_bytes,
            "uptime_s": round(time.monotonic() - state.started, 3),
            "counters": self.store.counters.snapshot(),
            "spool": spool_counts(state.config.spool_dir),
            "connections": state.connections,
            "subscribers": len(state.hub.subscribers),
            "watchers": len(state.hub.watchers),
            "socket": str(state.config.socket),
            "data_dir": str(state.config.data_dir),
        }

    async def sync_status(self) -> dict[str, Any]:
        if self.state.sync is not None:
            return await self.state.sync.status()
        sync = await self.store.sync_state()
        return {
            "state": "disabled",
            "acked_seq": sync.acked_seq,
            "pending": sync.pending,
            "oldest_pending_ms": sync.oldest_pending_ms,
            "rejected": sync.rejected,
            "last_error": None,
            "next_attempt_ms": None,
        }

    async def sync_now(self, request: wire.SyncNow) -> dict[str, Any]:
        worker = self.state.sync
        if worker is None:
            return {"triggered": False, "reason": SYNC_DISABLED_REASON}
        requeued = await worker.retry_rejected() if request.retry_rejected else None
        result = dict(await worker.sync_now(request.wait))
        if requeued is not None:
            result["requeued"] = requeued
        return result
