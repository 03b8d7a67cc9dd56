"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, between the sync worker and a remote.

It forwards each request to the upstream (one upstream connection per
request, ``Connection: close``) and re-frames the answer with a
``Content-Length``, keeping the client's connection alive. Faults are queued
per POST (``proxy.faults.append("500")``), or set as a ``mode`` that applies
to every request until cleared:

============== ============================================================
``reset``      close the client connection with a TCP RST, forward nothing
``timeout``    hold the request unanswered for ``hang_s``, forward nothing
``500``        answer 500, forward nothing
``429[:S]``    answer 429 with ``Retry-After: S`` (default 1), forward nothing
``400``/``413`` answer that status, forward nothing
``drop``       forward (the upstream commits), then reset the client connection
``slow``       forward (the upstream commits), then hold the answer for ``hang_s``
``pass``       forward normally (to place a later fault mid-stream)
``wrong_token`` forward with a wrong bearer token (the upstream answers 401)
============== ============================================================

:meth:`FaultProxy.refuse` stops listening and aborts open connections, so
the next connect is refused; :meth:`FaultProxy.accept` listens again on the
same port. ``refuse_ids`` answers 400 to any POST whose body contains one of
those event ids (an event the remote refuses even alone); ``rewrite`` edits
POST bodies in flight, so the real remote refuses an event of our choosing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["FaultProxy"]

_WRONG_TOKEN = b"Bearer wrong-token"


class _Request:
    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.split(b"\r\n")
        self.method, self.target, _ = lines[0].split(b" ", 2)
        self.headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                self.headers.append((name.strip(), value.strip()))
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def encode(self, upstream_host: bytes, auth: bytes | None = None) -> bytes:
        skip = {b"connection", b"host", b"content-length", b"transfer-encoding"}
        lines = [b"%s %s HTTP/1.1" % (self.method, self.target)]
        for key, value in self.headers:
            if key.lower() in skip or (auth is not None and key.lower() == b"authorization"):
                continue
            lines.append(key + b": " + value)
        if auth is not None:
            lines.append(b"Authorization: " + auth)
        lines += [
            b"Host: " + upstream_host,
            b"Connection: close",
            b"Content-Length: %d" % len(self.body),
        ]
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


def _response(status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    lines = [b"HTTP/1.1 %d X" % status, b"Content-Type: application/json"]
    lines += [k + b": " + v for k, v in extra or []]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Proxy to ``upstream_url``'s host; use :meth:`url_for` to rewrite the client's URL."""

    def __init__(self, upstream_url: str, *, hang_s: float = 5.0) -> None:
        parts = urlsplit(upstream_url)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.hang_s = hang_s
        self.faults: deque[str] = deque()
        self.mode: str | None = None
        self.refuse_ids: set[str] = set()
        #: Applied to every POST body before it is forwarded (e.g. to poison one event).
        self.rewrite: Callable[[bytes], bytes] | None = None
        self.port = 0
        #: Client connections accepted so far.
        self.connections = 0
        #: What happened, in order: ("forward"|fault, method).
        self.log: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        #: Set once a ``timeout`` or ``slow`` request is being held.
        self.held = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def url_for(self, upstream_url: str) -> str:
        """The same URL, through the proxy."""
        parts = urlsplit(upstream_url)
        return parts._replace(netloc=f"127.0.0.1:{self.port}").geturl()

    def injected(self, kind: str) -> int:
        return sum(1 for what, _ in self.log if what.split(":")[0] == kind)

    async def start(self) -> FaultProxy:
        await self.accept()
        return self

    async def accept(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def refuse(self) -> None:
        """Stop listening and abort open connections: new connects are refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def close(self) -> None:
        self._closing.set()  # ends held ("timeout") requests
        await self.refuse()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                if not await self._handle(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.transport.abort()

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        request = _Request(head[:-4], b"")
        length = int(request.header(b"content-length") or b"0")
        request.body = await reader.readexactly(length) if length else b""
        return request

    def _next_fault(self, request: _Request) -> str | None:
        if self.mode is not None:
            return self.mode
        if request.method == b"POST":
            if any(eid.encode() in request.body for eid in self.refuse_ids):
                return "refuse_id"
            if self.faults:
                return self.faults.popleft()
        return None

    async def _handle(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is gone."""
        fault = self._next_fault(request)
        self.log.append((fault or "forward", request.method.decode()))
        if fault == "reset":
            _reset(writer)
            return False
        if fault == "timeout":
            self.held.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.hang_s)
            _reset(writer)
            return False
        if fault == "refuse_id":
            writer.write(_response(400, b'{"error":"event refused by the proxy rule"}'))
            await writer.drain()
            return True
        if fault is not None and fault.split(":")[0] in ("500", "429", "400", "413"):
            status, _, after = fault.partition(":")
            extra = [(b"Retry-After", (after or "1").encode())] if status == "429" else []
            writer.write(_response(int(status), b'{"error":"injected"}', extra))
            await writer.drain()
            return True
        auth = _WRONG_TOKEN if fault == "wrong_token" else None
        if self.rewrite is not None and request.method == b"POST":
            request.body = self.rewrite(request.body)
        answer = await self._forward(request, auth)
        if fault == "drop":
            _reset(writer)
            return False
        if fault == "slow":
            self.held.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.hang_s)
        writer.write(answer)
        await writer.drain()
        return True

    async def _forward(self, request: _Request, auth: bytes | None) -> bytes:
        reader, writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        try:
            host = f"{self.upstream_host}:{self.upstream_port}".encode()
            writer.write(request.encode(host, auth))
            await writer.drain()
            raw = await reader.read(-1)
        finally:
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers: list[tuple[bytes, bytes]] = []
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lower = name.strip().lower()
            if lower == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lower not in (b"content-length", b"connection", b"content-type", b"keep-alive"):
                headers.append((name.strip(), value.strip()))
        if chunked:
            body = _dechunk(body)
        return _response(status, body, headers)
