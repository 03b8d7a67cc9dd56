"""Running a worker in a test, waiting for it, and checking what the remote holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from atlasd.config import Secret, SyncConfig
from atlasd.events import Event
from atlasd.sync.worker import SyncWorker
from atlasd.wire import SyncStatus
from tests.support.convex_double import ConvexDouble
from tests.sync.workload import VIEW_KEYS, sorted_rows

__all__ = [
    "assert_remote_holds",
    "assert_views_equal",
    "fast_config",
    "local_events",
    "running",
    "wait_synced",
]

# Longest a test waits for the worker to catch up on its own, in seconds.
SETTLE_S = 60.0


def fast_config(url: str, token: str, **overrides: Any) -> SyncConfig:
    """Small batches and short waits, so every path runs in a fraction of a second."""
    settings: dict[str, Any] = {
        "ingest_url": url,
        "token": Secret(token),
        "batch_max_events": 16,
        "linger_ms": 5,
        "interval_s": 0.5,
        "backoff_base_s": 0.02,
        "backoff_cap_s": 0.2,
        "auth_retry_s": 0.2,
        "timeout_s": 0.5,
        **overrides,
    }
    return SyncConfig(**settings)


@contextlib.asynccontextmanager
async def running(worker: SyncWorker) -> AsyncIterator[asyncio.Task[None]]:
    """The worker's ``run()`` as a task, cancelled (and awaited) on exit."""
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_synced(worker: SyncWorker, timeout: float = SETTLE_S) -> SyncStatus:
    """Wait, without triggering, until nothing is pending and the worker is idle."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await worker.status()
        if status.pending == 0 and status.state == "idle":
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"sync did not settle in {timeout} s: {status}")
        await asyncio.sleep(0.02)


async def local_events(store: Any) -> list[Event]:
    """Every event of the local log, in seq order."""
    events: list[Event] = []
    while batch := await store.read(from_seq=events[-1].seq if events else 0, limit=1000):
        events.extend(batch)
    return events


def assert_remote_holds(double: ConvexDouble, origin: str, expected: list[Event]) -> None:
    """The remote holds exactly ``expected`` for ``origin``: in seq order, once each, unchanged."""
    remote = double.events(origin)
    assert len({e["event_id"] for e in remote}) == len(remote), "duplicates on the remote"
    assert [e["seq"] for e in remote] == [e.seq for e in expected]
    assert remote == [msgspec.to_builtins(e) for e in expected]
    status = double.status(origin)
    assert status["events"] == len(expected)


async def assert_views_equal(double: ConvexDouble, store: Any) -> None:
    """Every remote view equals the local one, on the contract's columns, sorted by key."""
    for view in VIEW_KEYS:
        local = sorted_rows(view, await store.query(view, limit=10_000))
        remote = sorted_rows(view, double.view(view))
        assert remote == local, f"view {view} differs"
