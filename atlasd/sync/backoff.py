"""Exponential backoff with full jitter, reset on success (litestream's monitor).

The n-th consecutive failure waits a uniform random time in
``[0, min(cap, base * 2**n)]`` ("full jitter"), so many daemons that lost the
same remote do not come back in lockstep. A ``Retry-After`` from the remote
is a floor: the wait is never shorter than what the remote asked for, up to
:data:`RETRY_AFTER_MAX` so a misconfigured remote cannot stall sync for days.
"""

from __future__ import annotations

import random

__all__ = ["RETRY_AFTER_MAX", "Backoff"]

# Longest Retry-After honoured, in seconds; beyond this the remote is wrong.
RETRY_AFTER_MAX = 3600.0


class Backoff:
    """The delay schedule for consecutive failures of one kind of operation."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def ceiling(self, failures: int) -> float:
        """The largest delay the ``failures``-th consecutive failure may wait."""
        # 2**64 already exceeds any cap; avoid huge ints after a very long outage.
        return min(self.cap, self.base * 2.0 ** min(failures, 64))

    def next_delay(self, retry_after: float | None = None) -> float:
        """Record one more failure and return how long to wait before the next try."""
        delay = self._rng.uniform(0.0, self.ceiling(self.failures))
        self.failures += 1
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
        return delay

    def reset(self) -> int:
        """Forget past failures (after a success); returns how many there were."""
        failures, self.failures = self.failures, 0
        return failures
