"""A flaky network for the fault proxy: one POST in five fails, and what that may cost.

Shared by the drain test (tests/sync/test_flaky_drain.py) and ``make bench``
(bench/bench_sync.py), so both measure the same schedule.
"""

from __future__ import annotations

from tests.sync.fault_proxy import FaultProxy

__all__ = ["FAULTS", "HANG_S", "RETRY_AFTER_S", "imposed_wait_s", "one_in_five"]

#: The failing POSTs take these faults in turn: a reset, a 500, a 429, a slow answer.
RETRY_AFTER_S = 1
FAULTS = ("reset", "500", f"429:{RETRY_AFTER_S}", "slow")
#: How long the proxy holds a slow answer.
HANG_S = 1.0


def one_in_five(posts: int) -> list[str]:
    """A fault schedule for ``posts`` POSTs: every fifth fails, cycling through FAULTS."""
    return [FAULTS[(i // 5) % len(FAULTS)] if i % 5 == 4 else "pass" for i in range(posts)]


def imposed_wait_s(proxy: FaultProxy, backoff_base_s: float) -> float:
    """The most the injected faults may make the worker wait in all.

    Each 429 its Retry-After, each slow answer the stall, each reset or 500
    one first backoff step (full jitter: at most ``backoff_base_s``). A worker
    whose backoff climbs past the first step after a 200 waits longer.
    """
    return (
        proxy.injected("429") * RETRY_AFTER_S
        + proxy.injected("slow") * HANG_S
        + (proxy.injected("reset") + proxy.injected("500")) * backoff_base_s
    )
