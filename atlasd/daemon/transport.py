"""An accepted connection as an anyio byte stream on asyncio's socket transport.

asyncio's transport keeps the descriptor registered with the selector and
reads into a buffer as data arrives, where a raw-socket stream registers and
unregisters the descriptor around every receive; with thousands of requests
a second that difference is the daemon's largest per-request cost.

While a *sink* is set (:meth:`SocketTransport.set_sink`), incoming bytes go
straight to it from the protocol callback, skipping the reader coroutine and
its task step; without one they are buffered for :meth:`receive` as usual.

Reads go into one preallocated buffer per event-loop thread (asyncio's
buffered-protocol path, ``recv_into``) and only the bytes read are copied
out. asyncio's plain path allocates a fresh 256 KiB object for every read and
shrinks it: with glibc that is an mmap/munmap pair per read, about 15 us,
where the whole request costs less than that.

Resource handling: the transport owns the socket; :meth:`aclose` closes it
(unsent bytes get a bounded time to go), :meth:`abort` drops it at once.

Error handling: a peer that resets or goes away surfaces as
``anyio.BrokenResourceError``; use after close as ``anyio.ClosedResourceError``;
the end of input as ``anyio.EndOfStream``, like every anyio stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any, Protocol

import anyio
import anyio.abc

__all__ = ["Sink", "SocketTransport"]

#: The transport pauses reading past twice this many buffered bytes (backpressure).
READ_BUFFER = 64 * 1024
RECEIVE_SIZE = 64 * 1024
#: Bytes one read takes from the socket at most (asyncio's own figure).
READ_CHUNK = 256 * 1024
#: How long a close waits for unsent bytes to reach the peer before dropping them.
CLOSE_FLUSH_S = 5.0


class Sink(Protocol):
    """Takes the connection's input in the event loop's callbacks."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> None:
        """The end of input: a close, a half-close or a reset."""


_read_buffers = threading.local()


def _read_buffer() -> memoryview:
    """This thread's read buffer: filled by one read and emptied before the next (a
    loop's protocol callbacks never interleave), so every connection shares it."""
    view: memoryview | None = getattr(_read_buffers, "view", None)
    if view is None:
        view = _read_buffers.view = memoryview(bytearray(READ_CHUNK))
    return view


class _SinkProtocol(asyncio.StreamReaderProtocol, asyncio.BufferedProtocol):
    """A stream protocol that hands input to a sink while one is set."""

    sink: Sink | None = None

    def __init__(self, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, loop=loop)
        # made on the loop's thread, which is the one that reads into it
        self._view = _read_buffer()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self._view[:nbytes])
        sink = self.sink
        if sink is not None:
            sink.data_received(data)
        else:
            super().data_received(data)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.data_received(data)
        else:
            super().data_received(data)

    def eof_received(self) -> bool:
        sink = self.sink
        if sink is not None:
            sink.eof_received()
        # the reader sees the end too, for whoever reads once the sink is gone
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        sink = self.sink
        if sink is not None:
            self.sink = None
            sink.eof_received()
        super().connection_lost(exc)


class SocketTransport(anyio.abc.ByteStream):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: _SinkProtocol | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        # written to directly on the per-request path (the writer's layer adds nothing there)
        self._transport = writer.transport
        self._protocol = protocol
        self._closed = False

    @classmethod
    async def wrap(cls, sock: socket.socket, sink: Sink | None = None) -> SocketTransport:
        """Take over an accepted, connected Unix socket; input goes to ``sink`` (if
        given) from the first byte, which may come before this returns."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_BUFFER, loop=loop)
        protocol = _SinkProtocol(reader, loop)
        protocol.sink = sink
        transport, _ = await loop.create_unix_connection(lambda: protocol, sock=sock)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return cls(reader, writer, protocol)

    def set_sink(self, sink: Sink | None) -> None:
        """Route input to ``sink`` (None: back to :meth:`receive`)."""
        if self._protocol is None:
            raise RuntimeError("this transport cannot take a sink")
        self._protocol.sink = sink

    def pause_reading(self) -> None:
        """Stop taking input from the socket (the kernel's buffer then fills)."""
        transport = self._writer.transport
        if not transport.is_closing() and transport.is_reading():  # type: ignore[attr-defined]
            transport.pause_reading()  # type: ignore[attr-defined]

    def resume_reading(self) -> None:
        transport = self._writer.transport
        if not transport.is_closing() and not transport.is_reading():  # type: ignore[attr-defined]
            transport.resume_reading()  # type: ignore[attr-defined]

    def fileno(self) -> int:
        fd: int = self._writer.get_extra_info("socket").fileno()
        return fd

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        if self._closed:
            raise anyio.ClosedResourceError
        try:
            data = await self._reader.read(max_bytes)
        except OSError as exc:
            raise anyio.BrokenResourceError from exc
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        try:
            self._writer.write(item)
            # the transport copied what the kernel did not take: the caller's large answer
            # need not stay alive while the client reads it
            del item
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            # RuntimeError: the transport was closed under us (asyncio's wording).
            raise anyio.BrokenResourceError from exc

    def send_nowait(self, item: bytes) -> None:
        """Queue bytes for the peer without waiting; the caller bounds what piles up
        (see :attr:`unsent`) and lets :meth:`send` do the waiting."""
        if self._closed:
            raise anyio.ClosedResourceError
        try:
            self._transport.write(item)
        except (OSError, RuntimeError) as exc:
            raise anyio.BrokenResourceError from exc

    async def drain(self) -> None:
        """Wait until the transport's unsent bytes fall under its low-water mark."""
        if self._closed:
            raise anyio.ClosedResourceError
        try:
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise anyio.BrokenResourceError from exc

    @property
    def unsent(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        size: int = self._transport.get_write_buffer_size()
        return size

    async def send_eof(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write_eof()

    async def aclose(self) -> None:
        """Close after the unsent bytes are flushed, for at most ``CLOSE_FLUSH_S``; a peer
        that reads nothing meanwhile is dropped with them (its buffer is freed)."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError), anyio.CancelScope(shield=True):
            with anyio.move_on_after(CLOSE_FLUSH_S):
                await self._writer.wait_closed()
                return
            self.abort()
            await self._writer.wait_closed()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included (a peer cut off for not reading)."""
        self._closed = True
        self._writer.transport.abort()

    @property
    def extra_attributes(self) -> dict[Any, Any]:
        return {}
