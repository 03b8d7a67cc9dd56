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

Why plain asyncio inside: this is the per-request path. The reader splits
lines out of its own buffer, each request runs as a bare asyncio task, and
reader, writer and requests hand over through one-waiter futures, so a
request costs no anyio checkpoints, memory-stream hops or cancel scopes
(together they were most of the daemon's time per append under many
clients; see bench/bench_daemon.py).

Resource handling: at most ``PIPELINE_DEPTH`` requests of one connection are
queued or running; the reader stops reading until the writer catches up. The
socket is closed when :meth:`Connection.run` returns; requests still running
then (the client left) are cancelled.

Error handling: a line over ``max_line_bytes`` gets ``too_large`` and the
connection is closed after the answers before it; a client that disconnects
(even mid-line) just ends the connection; an unreadable line gets
``bad_request`` and the connection goes on.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque

import anyio
import anyio.abc

from atlasd import wire
from atlasd.daemon.handlers import Handlers
from atlasd.daemon.streams import run_subscription, run_watch
from atlasd.daemon.transport import SocketTransport
from atlasd.errors import TooLarge, Unavailable

__all__ = ["Connection", "close_after_refusal"]

#: Requests of one connection queued or running at once (bounds memory per client).
PIPELINE_DEPTH = 256
#: Answers are written in place (no writer hop) while the socket holds less unsent.
DIRECT_WRITE_LIMIT = 64 * 1024
#: After a refusal, how long the client may go on sending before the close. Closing with
#: unread input would make its next write fail (EPIPE) before it reads why.
REFUSAL_LINGER_S = 1.0

_APPENDS = (wire.Append, wire.AppendBatch)
_STREAMS = (wire.Subscribe, wire.Watch)


class _Slot:
    """One request's place in the answer order; done once it has its answer line."""

    __slots__ = ("_event", "data", "done", "stream")

    def __init__(self, data: bytes = b"", stream: wire.Subscribe | wire.Watch | None = None):
        self.data = data
        self.stream = stream
        self.done = bool(data) or stream is not None
        # made only when a later request has to wait for this one (rare: non-append ops)
        self._event: asyncio.Event | None = None

    def finish(self, data: bytes) -> None:
        self.data = data
        self.done = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        if self.done:
            return
        if self._event is None:
            self._event = asyncio.Event()
        await self._event.wait()


class Connection:
    def __init__(self, stream: SocketTransport, handlers: Handlers, max_line_bytes: int) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._handlers = handlers
        self._max_line = max_line_bytes
        # slots not yet written, in arrival order (the writer's FIFO)
        self._queue: deque[_Slot] = deque()
        self._reading = True
        # single-waiter wake-ups: the writer waits for work, the reader for room
        self._writer_waiter: asyncio.Future[None] | None = None
        self._reader_waiter: asyncio.Future[None] | None = None
        self._outstanding: deque[_Slot] = deque()
        self._barrier: _Slot | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
                await self._read_loop()
                if self._streaming:
                    await self._watch_hangup()
        finally:
            for task in self._tasks:
                task.cancel()  # the client is gone: nobody to answer
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

    # -- hand-overs ----------------------------------------------------------

    def _wake_writer(self) -> None:
        waiter = self._writer_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_reader(self) -> None:
        waiter = self._reader_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _enqueue(self, slot: _Slot) -> None:
        self._queue.append(slot)
        self._wake_writer()

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            with self._read_scope:
                while await self._read_some():
                    pass
            if self._read_scope.cancelled_caught:
                self._refuse_buffered()
        finally:
            self._reading = False
            self._wake_writer()

    async def _read_some(self) -> bool:
        """Dispatch every complete buffered line, then read more; False when the
        request phase is over."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            if end > self._max_line:
                self._too_large()
                return False
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if not await self._dispatch(line):
                return False
        if len(buffer) > self._max_line:
            self._too_large()
            return False
        try:
            buffer += await self._stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False  # the client is done sending (possibly mid-line: dropped)
        return True

    async def _dispatch(self, line: bytes) -> bool:
        """Queue one line's slot and start its request; False when a stream begins."""
        if not line.strip():
            return True  # blank lines are not requests
        while len(self._queue) >= PIPELINE_DEPTH:
            self._reader_waiter = asyncio.get_running_loop().create_future()
            await self._reader_waiter
        try:
            request = wire.decode_request(line)
        except wire.UnreadableRequest as exc:
            self._enqueue(_Slot(wire.encode_error(exc.request_id, exc)))
            return True
        if isinstance(request, _STREAMS):
            self._streaming = True
            self._enqueue(_Slot(stream=request))
            return False
        slot = _Slot()
        outstanding = self._outstanding
        while outstanding and outstanding[0].done:
            outstanding.popleft()
        deps: list[_Slot]
        if isinstance(request, _APPENDS):
            barrier = self._barrier
            deps = [barrier] if barrier is not None and not barrier.done else []
        else:
            deps = [s for s in outstanding if not s.done]
            self._barrier = slot
        outstanding.append(slot)
        self._enqueue(slot)
        task = asyncio.create_task(self._execute(slot, request, deps))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _execute(self, slot: _Slot, request: wire.Request, deps: list[_Slot]) -> None:
        for dep in deps:
            await dep.wait()
        slot.finish(await self._handlers.handle(request))
        self._answer_ready()

    def _answer_ready(self) -> None:
        """Write the answers now due, in place, when the writer is idle.

        Saves a hop through the writer task per request. The writer keeps
        what needs waiting: a full socket buffer, a stream, the end.
        """
        waiter = self._writer_waiter
        if waiter is None or waiter.done():
            return  # the writer is busy and looks at the queue again when done
        queue = self._queue
        if self._stream.unsent <= DIRECT_WRITE_LIMIT:
            out: list[bytes] = []
            while queue and queue[0].done and queue[0].stream is None:
                out.append(queue.popleft().data)
            if out:
                try:
                    self._stream.send_nowait(b"".join(out))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    waiter.set_result(None)  # the writer's next send ends the connection
                    return
                self._wake_reader()
        if (queue and queue[0].done) or (not queue and not self._reading):
            waiter.set_result(None)

    def _too_large(self) -> None:
        self._refused = True
        error = TooLarge(f"request line over {self._max_line} bytes; closing the connection")
        self._enqueue(_Slot(wire.encode_error(None, error)))

    def _refuse_buffered(self) -> None:
        """Answer the complete lines read but not yet dispatched with ``unavailable``."""
        error = Unavailable("daemon shutting down")
        for line in bytes(self._buffer).split(b"\n")[:-1]:
            if not line.strip():
                continue
            try:
                request_id = wire.decode_request(line).id
            except wire.UnreadableRequest as exc:
                request_id = exc.request_id
            self._enqueue(_Slot(wire.encode_error(request_id, error)))
        self._buffer.clear()

    # -- writing ---------------------------------------------------------------

    async def _write_loop(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not queue or not queue[0].done:
                    if not queue and not self._reading:
                        break
                    self._writer_waiter = loop.create_future()
                    await self._writer_waiter
                    continue
                out: list[bytes] = []
                while queue and queue[0].done:
                    slot = queue.popleft()
                    if slot.stream is not None:
                        self._wake_reader()
                        if out:
                            await self._stream.send(b"".join(out))
                        await self._run_stream(slot.stream)
                        return
                    out.append(slot.data)
                self._wake_reader()
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
