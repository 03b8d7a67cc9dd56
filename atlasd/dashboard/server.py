"""Run the dashboard: bind, print the URL with its token, serve until SIGINT/SIGTERM.

Resource handling: the listening socket is bound here (so a free port is
known before the URL is printed); uvicorn serves on it until a signal, then
the daemon connection is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import signal
import socket
import sys
import webbrowser
from types import FrameType
from typing import TextIO

import msgspec
import uvicorn

from atlasd.client import AsyncClient

from .app import create_app
from .daemon_link import DaemonLink
from .live import LiveStream
from .security import TOKEN_PARAM, AccessGuard, allowed_hosts, cookie_name

__all__ = ["DEFAULT_HOST", "DashboardConfig", "bind", "dashboard_url", "serve"]

DEFAULT_HOST = "127.0.0.1"


class DashboardConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``host``/``port`` to bind (port 0: a free one); the daemon's socket (None: the default)."""

    host: str = DEFAULT_HOST
    port: int = 0
    socket: str | None = None
    open_browser: bool = False
    #: A fixed access token (``--token-file``); None: a new random one each start.
    token: str | None = None


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # SIGINT/SIGTERM is this process's normal way out: stop and exit 0,
        # instead of uvicorn raising the signal again once it has stopped.
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0 picks a free one)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def dashboard_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?{TOKEN_PARAM}={token}"


def serve(config: DashboardConfig, out: TextIO = sys.stdout) -> int:
    """Serve until stopped; the URL is the first line written to ``out``."""
    sock = bind(config.host, config.port)
    port = sock.getsockname()[1]
    token = config.token if config.token is not None else secrets.token_urlsafe(24)
    client = AsyncClient(config.socket, spool=False)
    link = DaemonLink(client)
    csrf = secrets.token_urlsafe(24)
    app = AccessGuard(
        create_app(link, LiveStream(client), csrf=csrf),
        token=token,
        session=secrets.token_urlsafe(32),
        csrf=csrf,
        hosts=allowed_hosts(config.host, port),
        cookie=cookie_name(port),
    )
    server = _Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
            # Live streams never end by themselves: give them a second, then close.
            timeout_graceful_shutdown=1,
        )
    )

    def stop_before_serving(sig: int, frame: FrameType | None) -> None:
        server.should_exit = True

    # A stop that comes after the URL is out but before uvicorn takes the
    # signals over is a normal stop too (uvicorn keeps these as the handlers
    # to restore).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_before_serving)
    url = dashboard_url(config.host, port, token)
    print(url, file=out, flush=True)
    if config.open_browser:
        webbrowser.open(url)

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await client.aclose()

    try:
        asyncio.run(main())
    finally:
        sock.close()
    return 0
