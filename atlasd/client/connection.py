"""One pipelined connection to the daemon (anyio, Unix stream socket).

Many tasks may call :meth:`AsyncConnection.call` at once: each request is
sent as soon as the send lock is free, and answers, which the daemon sends in
request order, are matched to callers in that order. There is no background
reader task: whichever caller waits reads lines for everyone in front of it.

Resource handling: a request line is always sent whole (the send is shielded
from cancellation); a caller cancelled while waiting for its answer leaves its
slot behind, the answer is read and dropped later, and the reading passes on
to the next caller still waiting.

Error handling: connection failures become
:class:`~atlasd.errors.DaemonUnreachable` (the connection is then closed and
every waiting caller gets the same error); a permission refusal on the socket
becomes :class:`~atlasd.errors.Forbidden`.
"""

from __future__ import annotations

import errno
import os
import socket
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

import anyio
import anyio.abc
import msgspec
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from atlasd import wire
from atlasd.errors import AtlasdError, DaemonUnreachable, Forbidden, Internal
from atlasd.peercred import peer_credentials, trusted_daemon_uids

from . import calls

__all__ = [
    "MAX_LINE",
    "AsyncConnection",
    "AsyncLock",
    "AsyncResource",
    "check_daemon_owner",
    "connect",
    "run_blocking",
    "unreachable",
]

_T = TypeVar("_T")

#: The lock the async client guards its connection with (threading's in the blocking one).
AsyncLock = anyio.Lock


async def run_blocking(work: Callable[[], _T]) -> _T:
    """Run blocking file I/O (a spool write) in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(work)


class AsyncResource:
    """Something an ``async with`` block closes (by its ``aclose``) when it ends."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError


#: Longest answer line accepted; the largest ``read`` (10,000 events of up to
#: 1 MiB each) could exceed it, but a line this long means something is wrong.
MAX_LINE = 256 * 1024 * 1024

_UNREACHABLE_ERRNOS = {
    errno.ENOENT,
    errno.ECONNREFUSED,
    errno.ENOTDIR,
    errno.ECONNRESET,
    errno.EPIPE,
    errno.ENOTSOCK,
    errno.EAGAIN,  # listen backlog full
}


def unreachable(path: os.PathLike[str] | str, exc: BaseException) -> AtlasdError:
    """The error to raise when connecting to ``path`` failed with ``exc``."""
    if isinstance(exc, PermissionError):
        return Forbidden(f"permission denied on socket {path}")
    if isinstance(exc, OSError) and exc.errno not in _UNREACHABLE_ERRNOS and exc.errno is not None:
        return DaemonUnreachable(f"cannot connect to {path}: {exc.strerror}")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return DaemonUnreachable(f"no daemon answers on {path} ({reason})")


def check_daemon_owner(sock: socket.socket, path: os.PathLike[str] | str) -> None:
    """Refuse a socket served by anyone but the expected daemon, before sending anything.

    Whoever creates a socket path first (a shared ``/tmp`` directory) would
    otherwise receive every event sent to it. The kernel records who listens
    on a socket; it must be the current user, root or the system service's user.

    Error handling: raises :class:`~atlasd.errors.Forbidden`.
    """
    try:
        uid = peer_credentials(sock).uid
    except OSError as exc:
        raise unreachable(path, exc) from exc
    if uid not in trusted_daemon_uids():
        raise Forbidden(
            f"socket {path} is served by uid {uid}, not by you, root or the atlasd service; "
            "refusing to send anything to it (another user may have created it)"
        )


async def connect(path: os.PathLike[str] | str, timeout: float) -> SocketStream:
    """Open a Unix stream connection to the expected daemon, translating failures
    (see module doc and :func:`check_daemon_owner`)."""
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_unix(os.fspath(path))
    except TimeoutError as exc:
        raise DaemonUnreachable(f"no daemon answers on {path} (connect timed out)") from exc
    except OSError as exc:
        raise unreachable(path, exc) from exc
    try:
        check_daemon_owner(stream.extra(anyio.abc.SocketAttribute.raw_socket), path)
    except BaseException:
        await stream.aclose()
        raise
    return stream


class _Slot:
    __slots__ = ("abandoned", "request_id", "response", "wake")

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.response: wire.Response | None = None
        #: Set when the answer arrived, or when this caller should take over reading.
        self.wake = anyio.Event()
        #: The caller was cancelled; its answer will be read and dropped.
        self.abandoned = False

    def answered(self) -> bool:
        return self.response is not None


class AsyncConnection:
    """A request/response connection; see the module docstring."""

    def __init__(self, stream: SocketStream, path: os.PathLike[str] | str) -> None:
        self._stream = stream
        self._path = path
        self._reader = BufferedByteReceiveStream(stream)
        self._send_lock = anyio.Lock()
        #: Whether some caller is reading answers for everyone in front of it.
        self._reading = False
        self._pending: deque[_Slot] = deque()
        self._next_id = 0
        self._failure: AtlasdError | None = None

    @classmethod
    async def open(cls, path: os.PathLike[str] | str, timeout: float) -> AsyncConnection:
        """A connection to the expected daemon at ``path`` (see :func:`connect`)."""
        return cls(await connect(path, timeout), path)

    @property
    def usable(self) -> bool:
        return self._failure is None

    async def call(self, request: wire.Request) -> wire.Response:
        """Send ``request`` and return its answer line (raising only on transport failure)."""
        async with self._send_lock:
            self._raise_if_failed()
            self._next_id += 1
            slot = _Slot(self._next_id)
            request.id = slot.request_id
            line = wire.encode_request(request)
            self._pending.append(slot)
            await self._send(line)
        try:
            await self._await_answer(slot)
        except BaseException:
            slot.abandoned = True
            self._pass_reading_on()
            raise
        assert slot.response is not None
        return slot.response

    async def _await_answer(self, slot: _Slot) -> None:
        # One caller at a time reads: it hands each answer to its caller and
        # stops at its own, passing the reading on to the next waiting caller.
        while not slot.answered():
            self._raise_if_failed()
            if self._reading:
                await slot.wake.wait()
                slot.wake = anyio.Event()
                continue
            self._reading = True
            try:
                while not slot.answered():
                    response = await self.receive()
                    head = self._pending.popleft()
                    if response.id != head.request_id:
                        refusal = calls.connection_refusal(response)
                        await self._fail(
                            refusal or Internal(f"answer for id {response.id!r} out of order")
                        )
                        self._raise_if_failed()
                    head.response = response
                    head.wake.set()
            finally:
                self._reading = False
            self._pass_reading_on()

    def _pass_reading_on(self) -> None:
        """Wake the first caller still waiting, to read next (all of them on failure)."""
        if self._reading:
            return
        for slot in self._pending:
            if self._failure is not None:
                slot.wake.set()
            elif not slot.abandoned:
                slot.wake.set()
                return

    async def send_only(self, request: wire.Request) -> None:
        """Send a request that turns the connection into a stream (subscribe, watch)."""
        async with self._send_lock:
            self._raise_if_failed()
            await self._send(wire.encode_request(request))

    async def receive(self) -> wire.Response:
        """Read one line from the daemon."""
        try:
            line = await self._reader.receive_until(b"\n", MAX_LINE)
        except (anyio.IncompleteRead, anyio.BrokenResourceError, OSError) as exc:
            await self._fail(DaemonUnreachable(f"connection to {self._path} closed by the daemon"))
            raise self._failure_or_internal() from exc
        except anyio.DelimiterNotFound as exc:
            await self._fail(Internal(f"answer line over {MAX_LINE} bytes"))
            raise self._failure_or_internal() from exc
        except anyio.ClosedResourceError as exc:
            raise self._failure_or_internal() from exc
        try:
            return wire.decode_response(line)
        except msgspec.MsgspecError as exc:
            await self._fail(Internal(f"unreadable answer from the daemon: {exc}"))
            raise self._failure_or_internal() from exc

    async def aclose(self) -> None:
        if self._failure is None:
            self._failure = DaemonUnreachable("connection closed")
        await self._stream.aclose()

    async def _send(self, line: bytes) -> None:
        try:
            # Shielded: a line cut by cancellation would corrupt the stream for
            # every other caller; a cancelled caller's answer is dropped later.
            with anyio.CancelScope(shield=True):
                await self._stream.send(line)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            # A daemon that refused the connection before reading left its reason.
            refusal = None if self._reading else await self._pending_refusal()
            await self._fail(refusal or DaemonUnreachable(f"connection to {self._path} lost"))
            raise self._failure_or_internal() from exc

    async def _pending_refusal(self) -> AtlasdError | None:
        try:
            with anyio.move_on_after(1.0):
                line = await self._reader.receive_until(b"\n", MAX_LINE)
                return calls.connection_refusal(wire.decode_response(line))
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.DelimiterNotFound,
            OSError,
            msgspec.MsgspecError,
        ):
            return None
        return None

    async def _fail(self, error: AtlasdError) -> None:
        if self._failure is None:
            self._failure = error
        for slot in self._pending:
            slot.wake.set()
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure_or_internal()

    def _failure_or_internal(self) -> AtlasdError:
        failure = self._failure or Internal("connection failed")
        # A fresh instance per raise keeps tracebacks of concurrent callers apart.
        return type(failure)(failure.message, **failure.extra)

    def __repr__(self) -> str:
        return f"<AsyncConnection {self._path} pending={len(self._pending)}>"
