"""The asyncio/anyio client for the daemon's socket (docs/protocol.md).

Resource handling: one connection is opened on first use and reused; calls
made concurrently on one client are pipelined on it. ``subscribe`` and
``watch`` open a connection of their own (the contract makes it one-way),
closed when the iterator is closed or its ``async with`` block ends. Use the
client as an async context manager, or call :meth:`AsyncClient.aclose`.

Error handling: daemon failures raise the :mod:`atlasd.errors` exception of
their code. When the connection drops between calls or mid-call, the call is
retried once on a new connection: appends always carry an ``event_id`` (made
here when the caller gave none), so a retry can never append twice. When no
daemon answers at all, ``append``/``append_batch`` write to the spool and say
so (``AppendOutcome.spooled``); every other call raises
:class:`~atlasd.errors.DaemonUnreachable`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import msgspec

from atlasd import wire
from atlasd.errors import AtlasdError, DaemonUnreachable, Internal, Unavailable
from atlasd.events import AppendResult, Event, NewEvent

from . import calls
from .connection import AsyncConnection, connect
from .paths import resolve_data_dir, resolve_socket_path, spool_dir_for
from .results import AppendOutcome, Pong, QueryPage, ReadResult, StatusReport
from .spool import spool_events

__all__ = ["AsyncClient", "AsyncSubscription", "AsyncWatch"]

Order = Literal["asc", "desc"]


class AsyncClient:
    """Talks to one daemon; see the module docstring.

    ``socket_path`` and ``data_dir`` default as the daemon's do (flags, then
    ``ATLASD_SOCKET`` / ``ATLASD_DATA_DIR``, then the built-in defaults).
    ``spool=False`` turns the offline fallback off (appends then raise
    :class:`~atlasd.errors.DaemonUnreachable`).
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        spool: bool = True,
        connect_timeout: float = 5.0,
    ) -> None:
        self.socket_path: Path = resolve_socket_path(socket_path)
        self._data_dir = data_dir
        self.spool_enabled = spool
        self.connect_timeout = connect_timeout
        self._conn: AsyncConnection | None = None
        self._connect_lock = anyio.Lock()

    @property
    def spool_dir(self) -> Path:
        """Where offline appends go: ``DATA_DIR/spool``."""
        return spool_dir_for(resolve_data_dir(self._data_dir, socket_path=self.socket_path))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the shared connection (open subscriptions close on their own)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    # -- raw calls -----------------------------------------------------------

    async def call(self, request: wire.Request) -> Any:
        """Send one request and return its ``result``; retried once if the connection drops."""
        reused = self._conn is not None and self._conn.usable
        conn = await self._connection()
        try:
            response = await conn.call(request)
        except DaemonUnreachable:
            if not reused:
                raise
            # The daemon restarted or dropped an idle connection; a new one
            # tells whether it is really gone.
            conn = await self._connection()
            response = await conn.call(request)
        return calls.check(response)

    async def _connection(self) -> AsyncConnection:
        async with self._connect_lock:
            if self._conn is None or not self._conn.usable:
                stream = await connect(self.socket_path, self.connect_timeout)
                self._conn = AsyncConnection(stream, self.socket_path)
            return self._conn

    # -- the contract's ops --------------------------------------------------

    async def ping(self) -> Pong:
        return msgspec.convert(await self.call(wire.Ping()), Pong)

    async def append(
        self,
        stream: str,
        type: str,
        data: dict[str, Any],
        *,
        event_id: str | None = None,
        meta: dict[str, Any] | None = None,
        expected_version: int | None = None,
        occurred_at: int | None = None,
    ) -> AppendOutcome:
        """Append one event; spooled when no daemon answers (unless ``expected_version``)."""
        event = calls.stamped(
            NewEvent(
                stream=stream,
                type=type,
                data=data,
                event_id=event_id,
                meta=meta,
                expected_version=expected_version,
                occurred_at=occurred_at,
            )
        )
        try:
            result = await self.call(calls.append_request(event))
        except (DaemonUnreachable, Unavailable) as exc:
            return (await self._spool([event], exc, batch=False))[0]
        return AppendOutcome.from_result(msgspec.convert(result, AppendResult))

    async def append_batch(self, events: Sequence[NewEvent]) -> list[AppendOutcome]:
        """Append all ``events`` or none; spooled as one file when no daemon answers."""
        prepared = [calls.stamped(e) for e in events]
        try:
            result = await self.call(calls.batch_request(prepared))
        except (DaemonUnreachable, Unavailable) as exc:
            return await self._spool(prepared, exc, batch=True)
        return [AppendOutcome.from_result(r) for r in calls.to_results(result)]

    async def _spool(
        self, events: list[NewEvent], cause: AtlasdError, *, batch: bool
    ) -> list[AppendOutcome]:
        spool_dir = self.spool_dir if self.spool_enabled else None
        return await anyio.to_thread.run_sync(
            functools.partial(spool_events, events, cause, spool_dir, batch=batch)
        )

    async def read(
        self,
        from_seq: int = 0,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> ReadResult:
        """Events with ``seq > from_seq``, oldest first."""
        result = await self.call(calls.read_request(from_seq, stream, types, limit))
        return msgspec.convert(result, ReadResult)

    def subscribe(
        self,
        from_seq: int | Literal["end"] = 0,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> AsyncSubscription:
        """Events after ``from_seq`` (``"end"``: only new ones), then live ones, forever.

        Use as ``async with client.subscribe(...) as events: async for event in events``.
        A subscriber that falls behind gets :class:`~atlasd.errors.SlowConsumer`
        and may resume from the last ``seq`` it saw.
        """
        request = calls.subscribe_request(from_seq, stream, types)
        return AsyncSubscription(self.socket_path, self.connect_timeout, request)

    async def query(
        self,
        view: str,
        *,
        filter: dict[str, Any] | None = None,
        limit: int | None = None,
        order: Order | None = None,
        order_by: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every matching row of a view, or the first ``limit``: read a page at a time,
        never cut short silently (:meth:`query_page` reads one page)."""
        rows: list[dict[str, Any]] = []
        pages = self.query_all(
            view,
            filter=filter,
            order=order,
            order_by=order_by,
            since=since,
            until=until,
            page_size=calls.page_size(limit),
        )
        try:
            async for row in pages:
                rows.append(row)
                if limit is not None and len(rows) >= limit:
                    break
        finally:
            await pages.aclose()
        return rows

    async def query_page(
        self, view: str, args: calls.QueryArgs, after: str | None = None
    ) -> QueryPage:
        """One page of a view: the rows after cursor ``after`` and the next cursor."""
        return calls.to_page(await self.call(calls.query_request(view, args, after)))

    async def query_all(
        self,
        view: str,
        *,
        filter: dict[str, Any] | None = None,
        order: Order | None = None,
        order_by: str | None = None,
        since: int | None = None,
        until: int | None = None,
        page_size: int | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every matching row, once each and in order, fetched a page at a time."""
        args = calls.QueryArgs(
            filter=filter,
            limit=page_size,
            order=order,
            order_by=order_by,
            since=since,
            until=until,
        )
        after: str | None = None
        while True:
            page = await self.query_page(view, args, after)
            for row in page.rows:
                yield row
            if page.next is None:
                return
            after = page.next

    def watch(
        self,
        view: str,
        *,
        filter: dict[str, Any] | None = None,
        limit: int | None = None,
        order: Order | None = None,
        order_by: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> AsyncWatch:
        """The rows of a query now (its first page), then again each time they change."""
        args = calls.QueryArgs(
            filter=filter, limit=limit, order=order, order_by=order_by, since=since, until=until
        )
        return AsyncWatch(self.socket_path, self.connect_timeout, calls.watch_request(view, args))

    async def status_raw(self) -> dict[str, Any]:
        """The ``status`` answer exactly as the daemon sent it."""
        return msgspec.convert(await self.call(wire.Status()), dict[str, Any])

    async def status(self) -> StatusReport:
        return StatusReport.from_wire(await self.status_raw())

    async def sync_now(self, *, wait: bool = False, retry_rejected: bool = False) -> dict[str, Any]:
        """Start a sync round now; ``wait`` for its outcome, ``retry_rejected`` requeues first."""
        result = await self.call(wire.SyncNow(wait=wait, retry_rejected=retry_rejected))
        return msgspec.convert(result, dict[str, Any])


class _Stream:
    """A one-way connection opened by ``subscribe`` or ``watch``."""

    def __init__(self, path: Path, timeout: float, request: wire.Subscribe | wire.Watch) -> None:
        self._path = path
        self._timeout = timeout
        self._request = request
        self._conn: AsyncConnection | None = None

    async def _open(self) -> AsyncConnection:
        if self._conn is None:
            stream = await connect(self._path, self._timeout)
            self._conn = AsyncConnection(stream, self._path)
            self._request.id = 1
            await self._conn.send_only(self._request)
        return self._conn

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncSubscription(_Stream):
    """Async iterator of :class:`~atlasd.events.Event`; see ``AsyncClient.subscribe``."""

    _confirmed = False

    async def __aenter__(self) -> AsyncSubscription:
        await self._start()
        return self

    def __aiter__(self) -> AsyncSubscription:
        return self

    async def _start(self) -> AsyncConnection:
        conn = await self._open()
        if not self._confirmed:
            calls.check(await conn.receive())  # {"subscribed": true}, or the refusal
            self._confirmed = True
        return conn

    async def __anext__(self) -> Event:
        conn = await self._start()
        return calls.to_event(await conn.receive())


class AsyncWatch(_Stream):
    """Async iterator of row lists; see ``AsyncClient.watch``."""

    async def __aenter__(self) -> AsyncWatch:
        await self._open()
        return self

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> list[dict[str, Any]]:
        conn = await self._open()
        response = await conn.receive()
        if response.rows is not None:
            return response.rows
        result = calls.check(response)  # raises the daemon's error
        if isinstance(result, dict) and isinstance(result.get("rows"), list):
            return msgspec.convert(result["rows"], list[dict[str, Any]])
        raise Internal("watch line carries no rows")
