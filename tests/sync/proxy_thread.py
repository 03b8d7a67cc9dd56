"""A :class:`FaultProxy` on its own event loop thread, for tests that block.

Tests driving a daemon subprocess make blocking calls (sockets, ``subprocess``);
the proxy must keep forwarding meanwhile, so it gets a loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.sync.fault_proxy import FaultProxy

__all__ = ["ProxyThread"]

T = TypeVar("T")


class ProxyThread:
    """``with ProxyThread(upstream_url) as pt: pt.proxy.faults.append(...)``."""

    def __init__(self, upstream_url: str, *, hang_s: float = 30.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._upstream_url = upstream_url
        self._hang_s = hang_s
        self.proxy: FaultProxy

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the proxy's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def url_for(self, upstream_url: str) -> str:
        return self.proxy.url_for(upstream_url)

    def wait_held(self, timeout: float = 60.0) -> None:
        """Block until the proxy holds a request (a ``slow`` or ``timeout`` fault)."""
        self.run(asyncio.wait_for(self.proxy.held.wait(), timeout), timeout + 1)

    def __enter__(self) -> ProxyThread:
        self._thread.start()

        async def make() -> FaultProxy:
            return await FaultProxy(self._upstream_url, hang_s=self._hang_s).start()

        self.proxy = self.run(make())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.proxy.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
