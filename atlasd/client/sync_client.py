"""The blocking client: the same calls as :class:`~atlasd.client.AsyncClient`.

Resource handling: one socket, opened on first use and reused; calls are
serialized by a lock, so a ``Client`` may be shared between threads.
``subscribe`` and ``watch`` use a socket of their own, closed by the
iterator's ``close()`` or its ``with`` block. Use the client as a context
manager, or call :meth:`Client.close`.

Error handling: as the async client (module :mod:`atlasd.client.async_client`):
daemon errors raise their :mod:`atlasd.errors` class, a dropped connection is
retried once, appends fall back to the spool when no daemon answers.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

import msgspec

from atlasd import wire
from atlasd.errors import AtlasdError, DaemonUnreachable, Internal, Unavailable
from atlasd.events import AppendResult, Event, NewEvent

from . import calls
from .connection import MAX_LINE, check_daemon_owner, unreachable
from .paths import resolve_data_dir, resolve_socket_path, spool_dir_for
from .results import AppendOutcome, Pong, QueryPage, ReadResult, StatusReport
from .spool import spool_events

__all__ = ["Client", "Subscription", "WatchStream"]

Order = Literal["asc", "desc"]


class _BlockingConnection:
    """One socket; requests answered strictly in order."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except TimeoutError as exc:
            sock.close()
            raise DaemonUnreachable(f"no daemon answers on {path} (connect timed out)") from exc
        except OSError as exc:
            sock.close()
            raise unreachable(path, exc) from exc
        try:
            check_daemon_owner(sock, path)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self._sock = sock
        self._file: BinaryIO = sock.makefile("rb")
        self._next_id = 0
        self.failed = False

    def send(self, request: wire.Request) -> int:
        self._next_id += 1
        request.id = self._next_id
        try:
            self._sock.sendall(wire.encode_request(request))
        except OSError as exc:
            # The daemon may have refused the connection before reading (connection
            # limit, peer not allowed) and closed it: its reason is waiting to be read.
            refusal = self._pending_refusal()
            self._break()
            if refusal is not None:
                raise refusal from None
            raise DaemonUnreachable(f"connection to {self.path} lost") from exc
        return self._next_id

    def _pending_refusal(self) -> AtlasdError | None:
        try:
            line = self._file.readline(MAX_LINE + 1)
            return calls.connection_refusal(wire.decode_response(line)) if line else None
        except (OSError, ValueError, msgspec.MsgspecError):
            return None

    def receive(self) -> wire.Response:
        try:
            line = self._file.readline(MAX_LINE + 1)
        except OSError as exc:
            self._break()
            raise DaemonUnreachable(f"connection to {self.path} lost") from exc
        if not line.endswith(b"\n"):
            self._break()
            if len(line) > MAX_LINE:
                raise Internal(f"answer line over {MAX_LINE} bytes")
            raise DaemonUnreachable(f"connection to {self.path} closed by the daemon")
        try:
            return wire.decode_response(line)
        except msgspec.MsgspecError as exc:
            self._break()
            raise Internal(f"unreadable answer from the daemon: {exc}") from exc

    def call(self, request: wire.Request) -> wire.Response:
        request_id = self.send(request)
        response = self.receive()
        if response.id != request_id:
            self._break()
            refusal = calls.connection_refusal(response)
            if refusal is not None:
                raise refusal
            raise Internal(f"answer for id {response.id!r} out of order")
        return response

    def _break(self) -> None:
        self.failed = True
        self.close()

    def close(self) -> None:
        self.failed = True
        try:
            self._file.close()
            self._sock.close()
        except OSError as exc:  # pragma: no cover - close of a dead socket
            if exc.errno != errno.EBADF:
                raise


class Client:
    """Blocking client; arguments as :class:`~atlasd.client.AsyncClient`."""

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
        self._conn: _BlockingConnection | None = None
        self._lock = threading.Lock()

    @property
    def spool_dir(self) -> Path:
        return spool_dir_for(resolve_data_dir(self._data_dir, socket_path=self.socket_path))

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def call(self, request: wire.Request) -> Any:
        """Send one request and return its ``result``; retried once if the connection drops."""
        with self._lock:
            reused = self._conn is not None and not self._conn.failed
            try:
                response = self._connection().call(request)
            except DaemonUnreachable:
                if not reused:
                    raise
                # The daemon restarted or dropped an idle connection; a new
                # one tells whether it is really gone.
                response = self._connection().call(request)
            return calls.check(response)

    def _connection(self) -> _BlockingConnection:
        if self._conn is None or self._conn.failed:
            self._conn = _BlockingConnection(self.socket_path, self.connect_timeout)
        return self._conn

    def ping(self) -> Pong:
        return msgspec.convert(self.call(wire.Ping()), Pong)

    def append(
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
            result = self.call(calls.append_request(event))
        except (DaemonUnreachable, Unavailable) as exc:
            return self._spool([event], exc, batch=False)[0]
        return AppendOutcome.from_result(msgspec.convert(result, AppendResult))

    def append_batch(self, events: Sequence[NewEvent]) -> list[AppendOutcome]:
        """Append all ``events`` or none; spooled as one file when no daemon answers."""
        prepared = [calls.stamped(e) for e in events]
        try:
            result = self.call(calls.batch_request(prepared))
        except (DaemonUnreachable, Unavailable) as exc:
            return self._spool(prepared, exc, batch=True)
        return [AppendOutcome.from_result(r) for r in calls.to_results(result)]

    def _spool(
        self, events: list[NewEvent], cause: AtlasdError, *, batch: bool
    ) -> list[AppendOutcome]:
        return spool_events(
            events, cause, self.spool_dir if self.spool_enabled else None, batch=batch
        )

    def read(
        self,
        from_seq: int = 0,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> ReadResult:
        result = self.call(calls.read_request(from_seq, stream, types, limit))
        return msgspec.convert(result, ReadResult)

    def subscribe(
        self,
        from_seq: int | Literal["end"] = 0,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> Subscription:
        """Iterator of events after ``from_seq``, then live ones; close it when done."""
        request = calls.subscribe_request(from_seq, stream, types)
        return Subscription(_BlockingConnection(self.socket_path, self.connect_timeout), request)

    def query(
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
        rows = self.query_all(
            view,
            filter=filter,
            order=order,
            order_by=order_by,
            since=since,
            until=until,
            page_size=calls.page_size(limit),
        )
        return list(itertools.islice(rows, limit))

    def query_page(self, view: str, args: calls.QueryArgs, after: str | None = None) -> QueryPage:
        """One page of a view: the rows after cursor ``after`` and the next cursor."""
        return calls.to_page(self.call(calls.query_request(view, args, after)))

    def query_all(
        self,
        view: str,
        *,
        filter: dict[str, Any] | None = None,
        order: Order | None = None,
        order_by: str | None = None,
        since: int | None = None,
        until: int | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
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
            page = self.query_page(view, args, after)
            yield from page.rows
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
    ) -> WatchStream:
        """Iterator of row lists: the answer now, then each time it changes."""
        args = calls.QueryArgs(
            filter=filter, limit=limit, order=order, order_by=order_by, since=since, until=until
        )
        request = calls.watch_request(view, args)
        return WatchStream(_BlockingConnection(self.socket_path, self.connect_timeout), request)

    def status_raw(self) -> dict[str, Any]:
        return msgspec.convert(self.call(wire.Status()), dict[str, Any])

    def status(self) -> StatusReport:
        return StatusReport.from_wire(self.status_raw())

    def sync_now(self, *, wait: bool = False, retry_rejected: bool = False) -> dict[str, Any]:
        result = self.call(wire.SyncNow(wait=wait, retry_rejected=retry_rejected))
        return msgspec.convert(result, dict[str, Any])


class _BlockingStream:
    def __init__(self, conn: _BlockingConnection, request: wire.Subscribe | wire.Watch) -> None:
        self._conn = conn
        try:
            conn.send(request)
        except AtlasdError:
            conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Subscription(_BlockingStream):
    """Blocking iterator of :class:`~atlasd.events.Event`."""

    def __init__(self, conn: _BlockingConnection, request: wire.Subscribe) -> None:
        super().__init__(conn, request)
        try:
            calls.check(conn.receive())  # {"subscribed": true}, or the refusal
        except AtlasdError:
            conn.close()
            raise

    def __enter__(self) -> Subscription:
        return self

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return calls.to_event(self._conn.receive())


class WatchStream(_BlockingStream):
    """Blocking iterator of row lists."""

    def __enter__(self) -> WatchStream:
        return self

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        return self

    def __next__(self) -> list[dict[str, Any]]:
        response = self._conn.receive()
        if response.rows is not None:
            return response.rows
        result = calls.check(response)
        if isinstance(result, dict) and isinstance(result.get("rows"), list):
            return msgspec.convert(result["rows"], list[dict[str, Any]])
        raise Internal("watch line carries no rows")
