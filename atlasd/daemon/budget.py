"""A daemon-wide budget of bytes, shared by the streams that hold answers for clients.

Resource handling: :meth:`ByteBudget.room` waits until the bytes held are
under the limit; :meth:`ByteBudget.hold` counts bytes until its block ends.
One holder may take the total past the limit (an answer is never split), so
the peak is the limit plus what the holders let in at once took.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio

__all__ = ["ByteBudget"]


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._freed = anyio.Event()

    async def room(self) -> None:
        """Return once the bytes held are under the limit."""
        while self.held >= self.limit:
            await self._freed.wait()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        self.held += size
        try:
            yield
        finally:
            self.held -= size
            self._freed.set()
            self._freed = anyio.Event()
