"""One client connection: read lines, run requests concurrently, answer in order.

Pipelining: every request line becomes a *slot* in a FIFO; the writer sends
each slot's answer in arrival order, joining answers that are ready into one
write. Appends start at once, so one client's pipelined appends meet other
clients' in the store's group commit; any other op first waits for every
earlier request of the connection, and appends wait for the last such op,
so a pipeline behaves as if run one request at a time (read-your-writes).

``subscribe`` and ``watch`` end the request phase: the writer runs the
stream, and the reader only watches for the client hanging up (a half-close,
``shutdown(SHUT_WR)`` as ``socat`` does, keeps the stream going).

Resource handling: at most ``PIPELINE_DEPTH`` requests of one connection are
queued or running; the reader stops reading until the writer catches up. The
socket is closed when :meth:`Connection.run` returns.

Error handling: a line over ``max_line_bytes`` gets ``too_large`` and the
connection is closed after the answers before it; a client that disconnects
(even mid-line) just ends the connection; an unreadable line gets
``bad_request`` and the connection goes on.
"""

from __future__ import annotations

import contextlib
import select
from collections import deque
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from atlasd import wire
from atlasd.daemon.handlers import Handlers
from atlasd.daemon.streams import run_subscription, run_watch
from atlasd.daemon.transport import SocketTransport
from atlasd.errors import TooLarge, Unavailable

__all__ = ["Connection", "close_after_refusal"]

#: Requests of one connection queued or running at once (bounds memory per client).
PIPELINE_DEPTH = 256
#: After a refusal, how long the client may go on sending before the close. Closing with
#: unread input would make its next write fail (EPIPE) before it reads why.
REFUSAL_LINGER_S = 1.0

_APPENDS = (wire.Append, wire.AppendBatch)
_STREAMS = (wire.Subscribe, wire.Watch)


class _Slot:
    """One request's place in the answer order."""

    __slots__ = ("data", "done", "stream")

    def __init__(self, data: bytes = b"", stream: wire.Subscribe | wire.Watch | None = None):
        self.data = data
        self.stream = stream
        self.done = anyio.Event()
        if data or stream is not None:
            self.done.set()


class Connection:
    def __init__(self, stream: SocketTransport, handlers: Handlers, max_line_bytes: int) -> None:
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self._handlers = handlers
        self._max_line = max_line_bytes
        self._slots_in, self._slots_out = anyio.create_memory_object_stream[_Slot](PIPELINE_DEPTH)
        self._outstanding: deque[_Slot] = deque()
        self._barrier: _Slot | None = None
        self._read_scope = anyio.CancelScope()
        self._streaming = False
        self._refused = False
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self) -> None:
        """Serve the connection until the client leaves or :meth:`stop` is called."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._write_loop)
                await self._read_loop(tg)
                if self._streaming:
                    await self._watch_hangup()
        finally:
            if self._refused:
                await close_after_refusal(self._stream)
            else:
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()

    def stop(self) -> None:
        """Daemon shutdown: read no more requests; streams end at once.

        Requests already read are still answered; complete lines already
        buffered are answered ``unavailable``.
        """
        if self._streaming and self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._read_scope.cancel()

    async def _read_loop(self, tg: anyio.abc.TaskGroup) -> None:
        async with self._slots_in:
            with self._read_scope:
                while await self._read_one(tg):
                    pass
            if self._read_scope.cancelled_caught:
                await self._refuse_buffered()

    async def _read_one(self, tg: anyio.abc.TaskGroup) -> bool:
        """Read and dispatch one line; False when the request phase is over."""
        try:
            line = await self._reader.receive_until(b"\n", self._max_line + 1)
        except anyio.DelimiterNotFound:
            await self._too_large()
            return False
        except (anyio.IncompleteRead, anyio.EndOfStream):
            return False  # the client is done sending (possibly mid-line: dropped)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        if len(line) > self._max_line:
            await self._too_large()
            return False
        if not line.strip():
            return True  # blank lines are not requests
        try:
            request = wire.decode_request(line)
        except wire.UnreadableRequest as exc:
            await self._slots_in.send(_Slot(wire.encode_error(exc.request_id, exc)))
            return True
        if isinstance(request, _STREAMS):
            self._streaming = True
            await self._slots_in.send(_Slot(stream=request))
            return False
        slot = _Slot()
        while self._outstanding and self._outstanding[0].done.is_set():
            self._outstanding.popleft()
        deps: list[_Slot]
        if isinstance(request, _APPENDS):
            deps = [self._barrier] if self._barrier and not self._barrier.done.is_set() else []
        else:
            deps = [s for s in self._outstanding if not s.done.is_set()]
            self._barrier = slot
        self._outstanding.append(slot)
        await self._slots_in.send(slot)
        tg.start_soon(self._execute, slot, request, deps)
        return True

    async def _execute(self, slot: _Slot, request: wire.Request, deps: list[_Slot]) -> None:
        for dep in deps:
            await dep.done.wait()
        slot.data = await self._handlers.handle(request)
        slot.done.set()

    async def _too_large(self) -> None:
        self._refused = True
        error = TooLarge(f"request line over {self._max_line} bytes; closing the connection")
        await self._slots_in.send(_Slot(wire.encode_error(None, error)))

    async def _refuse_buffered(self) -> None:
        """Answer the complete lines read but not yet dispatched with ``unavailable``."""
        buffered = bytes(self._reader.buffer)
        error = Unavailable("daemon shutting down")
        for line in buffered.split(b"\n")[:-1]:
            if not line.strip():
                continue
            try:
                request_id: Any = wire.decode_request(line).id
            except wire.UnreadableRequest as exc:
                request_id = exc.request_id
            with anyio.CancelScope(shield=True):
                await self._slots_in.send(_Slot(wire.encode_error(request_id, error)))

    async def _write_loop(self) -> None:
        pending: deque[_Slot] = deque()
        try:
            async with self._slots_out:
                while True:
                    if not pending:
                        try:
                            pending.append(await self._slots_out.receive())
                        except anyio.EndOfStream:
                            break
                    await pending[0].done.wait()
                    out: list[bytes] = []
                    while pending and pending[0].done.is_set():
                        slot = pending.popleft()
                        if slot.stream is not None:
                            if out:
                                await self._stream.send(b"".join(out))
                                out = []
                            await self._run_stream(slot.stream)
                            return
                        out.append(slot.data)
                        if not pending:
                            with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                                pending.append(self._slots_out.receive_nowait())
                    if out:
                        await self._stream.send(b"".join(out))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client went away; nobody to answer
        finally:
            # Whatever ended the writing ends the connection.
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    async def _run_stream(self, request: wire.Subscribe | wire.Watch) -> None:
        if isinstance(request, wire.Subscribe):
            await run_subscription(self._handlers, request, self._stream.send)
        else:
            await run_watch(self._handlers, request, self._stream.send)

    async def _watch_hangup(self) -> None:
        """While streaming: end the connection when the client closes it."""
        fd = self._stream.fileno()
        while True:
            try:
                await self._stream.receive()  # anything sent now is ignored
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                break
        poller = select.poll()
        poller.register(fd, select.POLLHUP)
        if any(mask & select.POLLHUP for _, mask in poller.poll(0)):
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
            return
        # A half-close: the client still reads; keep streaming.
        await anyio.sleep_forever()


async def close_after_refusal(stream: anyio.abc.ByteStream) -> None:
    """Close after a final error line: end our side, drain the client briefly, close."""
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(REFUSAL_LINGER_S):
            try:
                await stream.send_eof()
                while True:
                    await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        await stream.aclose()
