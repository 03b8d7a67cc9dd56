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

Why plain asyncio inside: this is the per-request path. During the request
phase the connection is the transport's *sink*: lines are split and
dispatched in the protocol's ``data_received`` callback, a single append
goes straight to the store (``submit_append``) and its answer is written
from the callback the store's writer calls right after the group's commit,
so an append costs no task, coroutine, future or reader wake-up (together
they were most of the daemon's time per append under many clients; see
bench/bench_daemon.py and docs/eventlog.md). Other ops run as bare asyncio
tasks.

Resource handling: at most ``PIPELINE_DEPTH`` requests of one connection are
queued or running; past that the transport stops reading (the kernel buffer
fills, the client blocks) until the writer catches up. Memory is bounded by
bytes too: a request other than an append (a ``read``, a ``query``, ...)
starts only while the connection's answers not yet taken by the client
(queued, plus unsent in the transport) stay under ``OUTPUT_BUDGET`` bytes, so
a client that pipelines large reads and never reads the answers holds about
that much, not one answer per request. A connection on which no request line
completes for ``idle_timeout_s`` while nothing of it is running or unanswered
(idle, or a partial line trickling in) is closed, so held sockets do not
exhaust ``max_connections``; streams are exempt. The socket is closed
when :meth:`Connection.run` returns; requests still running then (the client
left) are cancelled, appends already queued still commit.

Error handling: a line over ``max_line_bytes`` gets ``too_large`` and the
connection is closed after the answers before it; a client that disconnects
(even mid-line) just ends the connection; an unreadable line gets
``bad_request`` and the connection goes on.
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections import deque
from collections.abc import Callable

import anyio
import anyio.abc

from atlasd import wire
from atlasd.daemon.access import PeerCred
from atlasd.daemon.handlers import Handlers
from atlasd.daemon.log import log_event
from atlasd.daemon.streams import run_subscription, run_watch
from atlasd.daemon.transport import SocketTransport
from atlasd.errors import TooLarge, Unavailable

__all__ = ["Connection", "close_after_refusal"]

#: Requests of one connection queued or running at once (bounds memory per client).
PIPELINE_DEPTH = 256
#: Answers are written in place (no writer hop) while the socket holds less unsent.
DIRECT_WRITE_LIMIT = 64 * 1024
#: Answer bytes one connection may hold (queued or unsent) before its next non-append
#: request waits for the client to read (bounds memory per client by bytes).
OUTPUT_BUDGET = 8 * 1024 * 1024
#: The idle timer looks this many times per ``idle_timeout_s``.
_IDLE_TICKS = 4
#: After a refusal, how long the client may go on sending before the close. Closing with
#: unread input would make its next write fail (EPIPE) before it reads why.
REFUSAL_LINGER_S = 1.0

_APPENDS = (wire.Append, wire.AppendBatch)
_STREAMS = (wire.Subscribe, wire.Watch)

log = logging.getLogger("atlasd.daemon")


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
    """One client; pass it as the sink to :meth:`SocketTransport.wrap`, then :meth:`run`.

    Input that arrives before :meth:`run` is buffered and served once it starts.
    """

    _stream: SocketTransport

    def __init__(
        self,
        handlers: Handlers,
        max_line_bytes: int,
        idle_timeout_s: float | None = None,
        peer: PeerCred | None = None,
    ) -> None:
        self._buffer = bytearray()
        self._handlers = handlers
        self._max_line = max_line_bytes
        self._idle_timeout = idle_timeout_s
        self._peer = peer
        # lines dispatched so far, and at the idle timer's last look
        self._lines = 0
        self._lines_seen = 0
        self._idle_ticks = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        # woken when the client took answers (a request waiting for room may go on)
        self._room: asyncio.Event | None = None
        # slots not yet written, in arrival order (the writer's FIFO)
        self._queue: deque[_Slot] = deque()
        self._reading = True
        # the writer's single-waiter wake-up (it waits for work)
        self._writer_waiter: asyncio.Future[None] | None = None
        # the request phase: set while lines are read and dispatched
        self._phase: asyncio.Future[None] | None = None
        self._eof = False
        self._paused = False
        self._feeding = False
        self._stopped = False
        self._barrier: _Slot | None = None
        # appends started as tasks that have not reached the store yet
        self._deferred = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._streaming = False
        self._refused = False
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self, stream: SocketTransport) -> None:
        """Serve the connection until the client leaves or :meth:`stop` is called."""
        self._stream = stream
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
        self._stopped = True
        if self._streaming and self._tg is not None:
            self._tg.cancel_scope.cancel()
        phase = self._phase
        if phase is not None and not phase.done():
            self._refuse_buffered()
            self._end_phase()

    # -- hand-overs ----------------------------------------------------------

    def _wake_writer(self) -> None:
        waiter = self._writer_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_reader(self) -> None:
        room = self._room
        if room is not None and not self._over_budget():
            self._room = None
            room.set()
        if self._paused:
            self._feed()  # lines held back for lack of room may go now

    def _over_budget(self) -> bool:
        """Whether the answers the client has not taken yet pass ``OUTPUT_BUDGET``."""
        held = self._stream.unsent
        if held > OUTPUT_BUDGET:
            return True
        for slot in self._queue:
            held += len(slot.data)
        return held > OUTPUT_BUDGET

    async def _wait_for_room(self) -> None:
        while self._over_budget():
            if self._stream.unsent > OUTPUT_BUDGET:
                # written in place: only the transport's drain says when the client read it
                try:
                    await self._stream.drain()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the client is gone; the answer goes nowhere
                continue
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()

    # -- idle connections --------------------------------------------------------

    def _arm_idle_timer(self) -> None:
        if self._idle_timeout is not None:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self._idle_timeout / _IDLE_TICKS, self._idle_tick)

    def _idle_tick(self) -> None:
        """Close the connection after ``_IDLE_TICKS`` looks without a new line while it
        owes the client nothing (a request running or an answer unsent is not idle)."""
        phase = self._phase
        if phase is None or phase.done():
            return
        if self._lines != self._lines_seen or self._queue or self._stream.unsent:
            self._lines_seen = self._lines
            self._idle_ticks = 0
        else:
            self._idle_ticks += 1
            if self._idle_ticks >= _IDLE_TICKS:
                log_event(
                    log,
                    logging.INFO,
                    "connection_idle_closed",
                    idle_s=self._idle_timeout,
                    partial_line_bytes=len(self._buffer),
                    pid=self._peer.pid if self._peer else None,
                    uid=self._peer.uid if self._peer else None,
                )
                self._buffer.clear()
                self._end_phase()
                return
        self._arm_idle_timer()

    def _enqueue(self, slot: _Slot) -> None:
        self._queue.append(slot)
        self._wake_writer()

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._stopped:
                self._refuse_buffered()
                return
            self._phase = loop.create_future()
            self._arm_idle_timer()
            self._feed()  # what arrived before run()
            await self._phase
        finally:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._stream.set_sink(None)
            self._reading = False
            # input after the request phase is read by the stream's hang-up watch or the
            # refusal's drain
            self._stream.resume_reading()
            self._paused = False
            self._wake_writer()

    # the transport's sink (called back by the event loop)

    def data_received(self, data: bytes) -> None:
        # The usual read under many clients: one whole request line and nothing held
        # back. It is dispatched as read, without going through the buffer (two copies
        # of the line and a search less); anything else takes the general path.
        if (
            not self._buffer
            and 0 <= data.find(b"\n") == len(data) - 1
            and len(data) <= self._max_line
            and not self._feeding
            and not self._paused
            and len(self._queue) < PIPELINE_DEPTH
        ):
            phase = self._phase
            if phase is not None and not phase.done():
                self._feeding = True
                try:
                    if not self._dispatch(data):
                        self._end_phase()
                finally:
                    self._feeding = False
                return
        self._buffer += data
        self._feed()

    def eof_received(self) -> None:
        self._eof = True
        self._feed()

    def _end_phase(self) -> None:
        self._stream.set_sink(None)
        phase = self._phase
        if phase is not None and not phase.done():
            phase.set_result(None)

    def _feed(self) -> None:
        """Dispatch the complete buffered lines while there is room; end the request
        phase at the end of input, a line over the limit or a stream op."""
        phase = self._phase
        if self._feeding or phase is None or phase.done():
            return
        self._feeding = True  # an answer written from inside a dispatch must not re-enter
        try:
            buffer = self._buffer
            queue = self._queue
            while True:
                if len(queue) >= PIPELINE_DEPTH:
                    if not self._paused:
                        self._paused = True
                        self._stream.pause_reading()
                    return
                end = buffer.find(b"\n")
                if end < 0:
                    break
                if end > self._max_line:
                    self._too_large()
                    return
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if not self._dispatch(line):
                    self._end_phase()
                    return
            if len(buffer) > self._max_line:
                self._too_large()
            elif self._eof:
                self._end_phase()  # the client is done sending (possibly mid-line: dropped)
            elif self._paused:
                self._paused = False
                self._stream.resume_reading()
        finally:
            self._feeding = False

    def _dispatch(self, line: bytes) -> bool:
        """Queue one line's slot and start its request; False when a stream begins."""
        self._lines += 1
        if not line.strip():
            return True  # blank lines are not requests
        try:
            request = wire.decode_request(line)
        except wire.UnreadableRequest as exc:
            self._enqueue(_Slot(wire.encode_error(exc.request_id, exc)))
            return True
        barrier = self._barrier
        if (
            type(request) is wire.Append
            and not self._deferred
            and (barrier is None or barrier.done)
        ):
            # The hot path: no task; the answer comes from the commit's callback. Only
            # when no earlier append still waits to reach the store (it would be overtaken).
            slot = _Slot()
            self._queue.append(slot)
            self._handlers.submit_append(request, self._answerer(slot))
            return True
        if isinstance(request, _STREAMS):
            self._streaming = True
            self._enqueue(_Slot(stream=request))
            return False
        slot = _Slot()
        deps: list[_Slot]
        deferred = isinstance(request, _APPENDS)
        if deferred:
            blocked = barrier is not None and not barrier.done
            # tasks reach the store in creation order (FIFO wake-ups), so order holds
            deps = [barrier] if blocked and barrier is not None else []
            self._deferred += 1
        else:
            # a slot leaves the queue only once answered: every earlier request not
            # done yet is in it
            deps = [s for s in self._queue if not s.done]
            self._barrier = slot
        self._enqueue(slot)
        task = asyncio.create_task(self._execute(slot, request, deps, deferred))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _answerer(self, slot: _Slot) -> Callable[[bytes], None]:
        def answer(data: bytes) -> None:
            slot.finish(data)
            self._answer_ready()

        return answer

    async def _execute(
        self, slot: _Slot, request: wire.Request, deps: list[_Slot], deferred: bool
    ) -> None:
        for dep in deps:
            await dep.wait()
        if deferred:
            # handle() queues the append in this same step, before any later append
            self._deferred -= 1
        else:
            await self._wait_for_room()
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
        head = queue[0] if queue else None
        if (
            head is not None
            and head.done
            and head.stream is None
            and self._stream.unsent <= DIRECT_WRITE_LIMIT
        ):
            queue.popleft()
            data = head.data
            if queue and queue[0].done and queue[0].stream is None:
                out = [data]
                while queue and queue[0].done and queue[0].stream is None:
                    out.append(queue.popleft().data)
                data = b"".join(out)
            try:
                self._stream.send_nowait(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                waiter.set_result(None)  # the writer's next send ends the connection
                return
            if self._room is not None or self._paused:
                self._wake_reader()
        if (queue and queue[0].done) or (not queue and not self._reading):
            self._wake_writer()  # a line read from inside may have woken it already

    def _too_large(self) -> None:
        self._refused = True
        error = TooLarge(f"request line over {self._max_line} bytes; closing the connection")
        self._enqueue(_Slot(wire.encode_error(None, error)))
        self._end_phase()

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
            # the client went away or was cut off for not reading: drop what it left unread
            self._stream.abort()
        finally:
            # Whatever ended the writing ends the connection.
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    async def _run_stream(self, request: wire.Subscribe | wire.Watch) -> None:
        if isinstance(request, wire.Subscribe):
            await run_subscription(self._handlers, request, self._stream.send, self._peer)
        else:
            await run_watch(self._handlers, request, self._stream.send, self._peer)

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
