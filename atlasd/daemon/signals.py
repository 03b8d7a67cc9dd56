"""SIGTERM and SIGINT as a stop request that cannot be repeated into a kill.

asyncio's own signal handlers are removed with ``SIG_DFL`` put back, which
leaves a window at the end of a stop where a second SIGTERM (a repeated
``systemctl stop``, Ctrl-C pressed twice) kills the process mid-commit. These
handlers are plain ``signal.signal`` ones that only record the first signal
and wake the event loop; on exit they are swapped for ``SIG_IGN`` in one step,
so from the first signal until the process ends no stop signal can kill it.
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType, TracebackType

__all__ = ["StopSignals"]

_STOP = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Context manager (entered on the event loop's thread) receiving stop signals.

    Resource handling: installs handlers on enter; on exit leaves both signals
    ignored (the daemon is exiting), never the default that would kill it.
    """

    def __init__(self) -> None:
        self._received: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        self._received = self._loop.create_future()
        for signum in _STOP:
            signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum in _STOP:
            signal.signal(signum, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between bytecodes: hand over to the loop.
        loop, received = self._loop, self._received
        if loop is None or received is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._record, signum)

    def _record(self, signum: int) -> None:
        if self._received is not None and not self._received.done():
            self._received.set_result(signum)

    async def first(self) -> int:
        """Wait for the first stop signal; later ones are absorbed."""
        assert self._received is not None, "enter StopSignals first"
        return await self._received
