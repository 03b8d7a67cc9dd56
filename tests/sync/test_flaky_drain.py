"""A 20,000-event backlog drains through a network where one request in five fails."""

from __future__ import annotations

import asyncio
import time

from atlasd.config import Secret, SyncConfig
from atlasd.eventlog import EventStore
from atlasd.events import NewEvent
from atlasd.sync.worker import SyncWorker
from tests.sync.fault_proxy import FaultProxy
from tests.sync.flaky import HANG_S, imposed_wait_s, one_in_five
from tests.sync.helpers import running
from tests.sync.ingest_server import IngestServer

BACKLOG = 20_000
# Scheduling on 2 shared cores: what a drain may take beyond transfer and fault waits.
SLACK_S = 10.0


async def _drain(store: EventStore, url: str, token: str) -> tuple[float, int]:
    """Seconds until the backlog is acknowledged, and the most consecutive failures seen."""
    # The shipped defaults: the largest safe batch, backoff 1 s doubling to a 60 s cap.
    worker = SyncWorker(store, SyncConfig(ingest_url=url, token=Secret(token)))
    most_failures = 0
    started = time.monotonic()
    async with running(worker):
        while (status := await worker.status()).acked_seq < store.last_seq:
            most_failures = max(most_failures, status.failures)
            await asyncio.sleep(0.01)
    return time.monotonic() - started, most_failures


async def test_a_backlog_drains_through_one_failure_in_five_waiting_only_what_faults_impose(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """Every 200 restarts the backoff: the drain waits no more than the faults impose."""
    for start in range(0, BACKLOG, 5000):
        await store.append_batch(
            [
                NewEvent(stream=f"s{i % 20}", type="Note", data={"i": i})
                for i in range(start, start + 5000)
            ]
        )
    async with FaultProxy(ingest_server.ingest_url, hang_s=HANG_S) as proxy:
        proxy.faults.extend(one_in_five(1000))
        elapsed, most_failures = await _drain(
            store, proxy.url_for(ingest_server.ingest_url), ingest_server.token
        )
        imposed = imposed_wait_s(proxy, backoff_base_s=1.0)
        faults = sum(1 for what, _ in proxy.log if what not in ("forward", "pass"))
    assert len(ingest_server.state.events) == BACKLOG
    assert faults >= 5
    # No two failures in a row here, so a backoff that restarts after each 200 never climbs.
    assert most_failures <= 1
    assert elapsed <= imposed + SLACK_S, (elapsed, imposed)
