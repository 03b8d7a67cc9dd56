"""The client for the daemon's socket (docs/protocol.md): :class:`AsyncClient` and its streams.

The blocking client (:mod:`atlasd.client.sync_client`) is generated from the
async one (:mod:`atlasd.client.async_client`); both share
:class:`~atlasd.client.core.ClientCore` (settings, event stamping, answers) and
differ only in their transport: :mod:`atlasd.client.connection` (pipelined) for
the async one, :mod:`atlasd.client.sync_connection` (one call at a time, shareable
between threads) for the blocking one.

Resource handling: one connection is opened on first use and reused; concurrent
calls share it (see the transport). ``subscribe`` and ``watch`` open a
connection of their own (the contract makes it one-way) when their ``async with``
block is entered or their first item is asked for, closed when the block ends or
by ``aclose()``. Use the client as an async context manager, or call
:meth:`AsyncClient.aclose`.

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
from typing import Any, Literal, Self

from atlasd import wire
from atlasd.errors import AtlasdError, DaemonUnreachable
from atlasd.events import Event, NewEvent

from . import calls
from .connection import AsyncConnection, AsyncLock, AsyncResource, run_blocking
from .core import SPOOL_ON, ClientCore
from .results import AppendOutcome, Pong, QueryPage, ReadResult, StatusReport, SyncNowResult

__all__ = ["AsyncClient", "AsyncSubscription", "AsyncWatch"]


class AsyncClient(ClientCore, AsyncResource):
    """Talks to one daemon; see the module docstring and
    :class:`~atlasd.client.core.ClientCore` for the arguments."""

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        spool: bool = True,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(
            socket_path, data_dir=data_dir, spool=spool, connect_timeout=connect_timeout
        )
        self._conn: AsyncConnection | None = None
        self._connect_lock = AsyncLock()

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
                self._conn = await AsyncConnection.open(self.socket_path, self.connect_timeout)
            return self._conn

    # -- the contract's ops --------------------------------------------------

    async def ping(self) -> Pong:
        return self._pong(await self.call(wire.Ping()))

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
        event = self._new_event(
            stream,
            type,
            data,
            event_id=event_id,
            meta=meta,
            expected_version=expected_version,
            occurred_at=occurred_at,
        )
        try:
            result = await self.call(calls.append_request(event))
        except SPOOL_ON as exc:
            outcomes = await self._spool([event], exc, batch=False)
            return outcomes[0]
        return self._outcome(result)

    async def append_batch(self, events: Sequence[NewEvent]) -> list[AppendOutcome]:
        """Append all ``events`` or none; spooled as one file when no daemon answers."""
        prepared = [calls.stamped(e) for e in events]
        try:
            result = await self.call(calls.batch_request(prepared))
        except SPOOL_ON as exc:
            return await self._spool(prepared, exc, batch=True)
        return self._outcomes(result)

    async def _spool(
        self, events: list[NewEvent], cause: AtlasdError, *, batch: bool
    ) -> list[AppendOutcome]:
        return await run_blocking(functools.partial(self._spool_now, events, cause, batch=batch))

    async def read(
        self,
        from_seq: int = 0,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> ReadResult[Event]:
        """Events with ``seq > from_seq``, oldest first."""
        return self._read_result(
            await self.call(calls.read_request(from_seq, stream, types, limit))
        )

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
        order: calls.Order | None = None,
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
        order: calls.Order | None = None,
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
        order: calls.Order | None = None,
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
        return self._status_raw(await self.call(wire.Status()))

    async def status(self) -> StatusReport:
        return self._status(await self.call(wire.Status()))

    async def sync_now(self, *, wait: bool = False, retry_rejected: bool = False) -> SyncNowResult:
        """Start a sync round now; ``wait`` for its outcome, ``retry_rejected`` requeues first."""
        return self._sync_result(
            await self.call(wire.SyncNow(wait=wait, retry_rejected=retry_rejected))
        )


class _Stream(AsyncResource):
    """A one-way connection opened by ``subscribe`` or ``watch``."""

    def __init__(self, path: Path, timeout: float, request: wire.Subscribe | wire.Watch) -> None:
        self._path = path
        self._timeout = timeout
        self._request = request
        self._conn: AsyncConnection | None = None

    async def _open(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await AsyncConnection.open(self._path, self._timeout)
            self._request.id = 1
            try:
                await self._conn.send_only(self._request)
            except AtlasdError:
                await self.aclose()
                raise
        return self._conn

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()


class AsyncSubscription(_Stream):
    """Iterator of :class:`~atlasd.events.Event`; see ``AsyncClient.subscribe``."""

    _confirmed = False

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    def __aiter__(self) -> AsyncSubscription:
        return self

    async def _start(self) -> AsyncConnection:
        conn = await self._open()
        if not self._confirmed:
            try:
                calls.check(await conn.receive())  # {"subscribed": true}, or the refusal
            except AtlasdError:
                await self.aclose()
                raise
            self._confirmed = True
        return conn

    async def __anext__(self) -> Event:
        conn = await self._start()
        return calls.to_event(await conn.receive())


class AsyncWatch(_Stream):
    """Iterator of row lists; see ``AsyncClient.watch``."""

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> list[dict[str, Any]]:
        conn = await self._open()
        return calls.to_rows(await conn.receive())
