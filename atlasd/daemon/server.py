"""The accept loop: admission (peer credentials, connection limit) and shutdown.

Resource handling: every accepted connection runs in the server's task
group and is closed when its task ends; :meth:`Server.stop` closes the
listener, then asks each connection to stop reading, so :meth:`Server.serve`
returns once the requests already read have been answered.

Error handling: ``accept`` failing for lack of resources (EMFILE, ENFILE,
ENOBUFS, ENOMEM) is retried after a short pause and logged at a limited
rate; any other accept error is a bug and propagates. A connection's
unexpected exception is logged and ends that connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time

import anyio
import anyio.abc

from atlasd import wire
from atlasd.daemon.access import AccessPolicy, PeerCred, peer_credentials
from atlasd.daemon.connection import Connection, close_after_refusal
from atlasd.daemon.handlers import Handlers
from atlasd.daemon.listener import BoundSocket
from atlasd.daemon.log import log_event
from atlasd.daemon.transport import SocketTransport
from atlasd.errors import AtlasdError, Forbidden, Unavailable

__all__ = ["Server"]

log = logging.getLogger("atlasd.daemon")

#: accept() errors that mean "out of resources for now", not a bug (as trio's serve_listeners).
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Pause before accepting again after running out of descriptors or memory.
ACCEPT_RETRY_S = 0.1
#: Log repeated accept resource errors at most this often.
ACCEPT_LOG_INTERVAL_S = 10.0
#: Time a refused client gets to take its error line before the close.
REFUSAL_SEND_S = 1.0


class Server:
    def __init__(self, bound: BoundSocket, handlers: Handlers, policy: AccessPolicy) -> None:
        self._bound = bound
        self._handlers = handlers
        self._state = handlers.state
        self._policy = policy
        self._accept_scope = anyio.CancelScope()
        self._connections: set[Connection] = set()
        self._last_accept_log = 0.0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Accept until :meth:`stop`; returns when every connection has ended."""
        loop = asyncio.get_running_loop()
        listening = self._bound.sock
        async with anyio.create_task_group() as tg:
            task_status.started()
            with self._accept_scope:
                while True:
                    try:
                        sock, _ = await loop.sock_accept(listening)
                    except OSError as exc:
                        if exc.errno in _RESOURCE_ERRNOS:
                            self._log_accept_error(exc)
                            await anyio.sleep(ACCEPT_RETRY_S)
                            continue
                        raise
                    tg.start_soon(self._serve_one, sock)
            listening.close()

    async def stop(self) -> None:
        """Stop accepting; connections stop reading and finish what they read."""
        self._state.stopping = True
        self._accept_scope.cancel()
        for connection in list(self._connections):
            connection.stop()

    async def _serve_one(self, sock: socket.socket) -> None:
        try:
            peer = peer_credentials(sock)
        except OSError:
            sock.close()
            return
        # Admission before the transport exists, so an admitted connection is its sink
        # from the first byte; no await between the limit check and the count.
        refusal = self._admission(peer)
        connection: Connection | None = None
        if refusal is None:
            config = self._state.config
            connection = Connection(
                self._handlers, config.max_line_bytes, config.idle_timeout_s, peer
            )
            self._state.connections += 1
            self._connections.add(connection)
        try:
            try:
                stream = await SocketTransport.wrap(sock, connection)
            except OSError:
                sock.close()
                return
            if connection is None:
                assert refusal is not None
                await self._refuse(stream, refusal)
                return
            try:
                await connection.run(stream)
            except Exception as exc:
                log_event(
                    log,
                    logging.ERROR,
                    "connection_failed",
                    pid=peer.pid,
                    error=f"{type(exc).__name__}: {exc}",
                    exc_info=True,
                )
        finally:
            if connection is not None:
                self._connections.discard(connection)
                self._state.connections -= 1

    def _admission(self, peer: PeerCred) -> AtlasdError | None:
        """Why this peer is refused now, or None to serve it."""
        if not self._policy.allows(peer):
            log_event(
                log, logging.WARNING, "peer_forbidden", pid=peer.pid, uid=peer.uid, gid=peer.gid
            )
            return Forbidden(f"uid {peer.uid} is not allowed on this socket")
        if self._state.stopping:
            return Unavailable("daemon shutting down")
        limit = self._state.config.max_connections
        if self._state.connections >= limit:
            log_event(
                log,
                logging.WARNING,
                "connection_refused",
                reason="max_connections",
                max_connections=limit,
            )
            return Unavailable(f"too many connections (max_connections={limit}); try again later")
        return None

    async def _refuse(self, stream: SocketTransport, error: AtlasdError) -> None:
        with anyio.move_on_after(REFUSAL_SEND_S):
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.send(wire.encode_error(None, error))
        await close_after_refusal(stream)

    def _log_accept_error(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._last_accept_log >= ACCEPT_LOG_INTERVAL_S:
            self._last_accept_log = now
            log_event(
                log, logging.WARNING, "accept_failed", error=exc.strerror, retry_s=ACCEPT_RETRY_S
            )
