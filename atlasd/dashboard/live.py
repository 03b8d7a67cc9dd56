"""Change notices for the page: one daemon subscription fanned out to every open page.

The feed subscribes to the log from its end and, for each event, moves
``seq`` on and wakes whoever waits in :meth:`LiveFeed.wait_change`. Pages are
told only that something changed (and the event's type and stream), and
fetch again the bounded page they show; a burst of appends wakes a waiter
once.

Error handling: when the subscription ends (the daemon restarted, or called
this reader slow), the feed subscribes again after a short pause from the
last seq it saw, and wakes every waiter so pages refresh.
"""

from __future__ import annotations

import logging
from typing import Literal

import anyio

from atlasd.client import AsyncClient
from atlasd.errors import AtlasdError

__all__ = ["LiveFeed"]

log = logging.getLogger("atlasd.dashboard")

#: Seconds between attempts to subscribe again after the subscription ended.
RESUBSCRIBE_DELAY_S = 0.5


class LiveFeed:
    """The last seq seen, and a wake-up for each change; see the module docstring."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.seq = 0
        self.last_type = ""
        self.last_stream = ""
        self.connected = False
        self._changed = anyio.Event()

    async def run(self) -> None:
        """Follow the log until cancelled."""
        from_seq: int | Literal["end"] = "end"
        while True:
            try:
                async with self._client.subscribe(from_seq) as events:
                    self.connected = True
                    self._wake()
                    async for event in events:
                        self.seq = event.seq
                        self.last_type = event.type
                        self.last_stream = event.stream
                        self._wake()
            except AtlasdError as exc:
                log.warning("dashboard.live_lost error=%s", exc.message)
            self.connected = False
            self._wake()
            if self.seq:
                from_seq = self.seq
            await anyio.sleep(RESUBSCRIBE_DELAY_S)

    def _wake(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait_change(self, seen_seq: int, timeout: float) -> bool:
        """Wait until ``seq`` moves past ``seen_seq`` (or the link changes); False on timeout."""
        if self.seq != seen_seq:
            return True
        with anyio.move_on_after(timeout):
            await self._changed.wait()
            return True
        return False
