"""An accepted connection as an anyio byte stream on asyncio's socket transport.

asyncio's transport keeps the descriptor registered with the selector and
reads into a buffer as data arrives, where a raw-socket stream registers and
unregisters the descriptor around every receive; with thousands of requests
a second that difference is the daemon's largest per-request cost.

Resource handling: the transport owns the socket; :meth:`aclose` closes it.

Error handling: a peer that resets or goes away surfaces as
``anyio.BrokenResourceError``; use after close as ``anyio.ClosedResourceError``;
the end of input as ``anyio.EndOfStream``, like every anyio stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import anyio
import anyio.abc

__all__ = ["SocketTransport"]

#: The transport pauses reading past twice this many buffered bytes (backpressure).
READ_BUFFER = 64 * 1024
RECEIVE_SIZE = 64 * 1024


class SocketTransport(anyio.abc.ByteStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._closed = False

    @classmethod
    async def wrap(cls, sock: socket.socket) -> SocketTransport:
        """Take over an accepted, connected Unix socket."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=READ_BUFFER)
        return cls(reader, writer)

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
            self._writer.write(item)
        except (OSError, RuntimeError) as exc:
            raise anyio.BrokenResourceError from exc

    @property
    def unsent(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        size: int = self._writer.transport.get_write_buffer_size()
        return size

    async def send_eof(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write_eof()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError), anyio.CancelScope(shield=True):
            await self._writer.wait_closed()

    @property
    def extra_attributes(self) -> dict[Any, Any]:
        return {}
