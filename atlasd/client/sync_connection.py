"""One blocking connection to the daemon (Unix stream socket), for the blocking client.

The counterpart of :mod:`atlasd.client.connection` with the same methods, so
that the blocking client can be generated from the async one: requests are
answered strictly in order, one call at a time (a lock serializes them, and a
close waits for the call in flight, so a connection may be shared between threads).

Error handling: as the async connection's. Connection failures become
:class:`~atlasd.errors.DaemonUnreachable` and leave the connection unusable;
a refusal the daemon sent before reading (connection limit, peer not allowed)
is raised as its own error class.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import BinaryIO, Self, TypeVar

import msgspec

from atlasd import wire
from atlasd.errors import AtlasdError, DaemonUnreachable, Internal

from . import calls
from .connection import MAX_LINE, check_daemon_owner, unreachable

__all__ = ["SyncConnection", "SyncLock", "SyncResource", "run_blocking"]

_T = TypeVar("_T")

#: The lock the blocking client guards its connection with.
SyncLock = threading.Lock


def run_blocking(work: Callable[[], _T]) -> _T:
    """Run blocking file I/O (a spool write) here: the caller is blocking already."""
    return work()


class SyncResource:
    """Something a ``with`` block closes (by its ``close``) when it ends."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class SyncConnection:
    """One socket; requests answered strictly in order."""

    def __init__(self, sock: socket.socket, path: os.PathLike[str] | str) -> None:
        self._path = path
        self._sock = sock
        self._file: BinaryIO = sock.makefile("rb")
        # Reentrant: a failing call closes the connection while holding it.
        self._lock = threading.RLock()
        self._next_id = 0
        self._failed = False

    @classmethod
    def open(cls, path: os.PathLike[str] | str, timeout: float) -> SyncConnection:
        """A connection to the expected daemon at ``path``."""
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
        return cls(sock, path)

    @property
    def usable(self) -> bool:
        return not self._failed

    def call(self, request: wire.Request) -> wire.Response:
        """Send ``request`` and return its answer line (raising only on transport failure)."""
        with self._lock:
            if self._failed:
                raise DaemonUnreachable(f"connection to {self._path} lost")
            self._next_id += 1
            request.id = self._next_id
            self._send(request)
            response = self.receive()
            if response.id != request.id:
                self.close()
                refusal = calls.connection_refusal(response)
                if refusal is not None:
                    raise refusal
                raise Internal(f"answer for id {response.id!r} out of order")
            return response

    def send_only(self, request: wire.Request) -> None:
        """Send a request that turns the connection into a stream (subscribe, watch)."""
        self._send(request)

    def _send(self, request: wire.Request) -> None:
        try:
            self._sock.sendall(wire.encode_request(request))
        except OSError as exc:
            # The daemon may have refused the connection before reading (connection
            # limit, peer not allowed) and closed it: its reason is waiting to be read.
            refusal = self._pending_refusal()
            self.close()
            if refusal is not None:
                raise refusal from None
            raise DaemonUnreachable(f"connection to {self._path} lost") from exc

    def _pending_refusal(self) -> AtlasdError | None:
        try:
            line = self._file.readline(MAX_LINE + 1)
            return calls.connection_refusal(wire.decode_response(line)) if line else None
        except (OSError, ValueError, msgspec.MsgspecError):
            return None

    def receive(self) -> wire.Response:
        """Read one line from the daemon."""
        try:
            line = self._file.readline(MAX_LINE + 1)
        except (OSError, ValueError) as exc:  # ValueError: closed by another thread
            self.close()
            raise DaemonUnreachable(f"connection to {self._path} lost") from exc
        if not line.endswith(b"\n"):
            closed_here = self._failed
            self.close()
            if closed_here:
                raise DaemonUnreachable("connection closed")
            if len(line) > MAX_LINE:
                raise Internal(f"answer line over {MAX_LINE} bytes")
            raise DaemonUnreachable(f"connection to {self._path} closed by the daemon")
        try:
            return wire.decode_response(line)
        except msgspec.MsgspecError as exc:
            self.close()
            raise Internal(f"unreadable answer from the daemon: {exc}") from exc

    def close(self) -> None:
        """Close the socket once the call in flight, if any, has its answer."""
        with self._lock:
            self._failed = True
            # Wakes a thread blocked reading (a subscription's, which reads without the
            # lock): closing the file alone would wait for that read to end.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            try:
                self._file.close()
                self._sock.close()
            except OSError as exc:  # pragma: no cover - close of a dead socket
                if exc.errno != errno.EBADF:
                    raise
