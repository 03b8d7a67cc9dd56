"""Faults between the worker and the real Convex functions (the double), one path each.

After every scenario the remote holds exactly the local events minus the
quarantined ones, in seq order, none twice, none missing, and the
quarantine holds exactly the poison events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from atlasd.eventlog import EventStore
from atlasd.sync.worker import SyncWorker
from tests.support.convex_double import ConvexDouble
from tests.sync.fault_proxy import FaultProxy
from tests.sync.helpers import (
    assert_remote_holds,
    assert_views_equal,
    fast_config,
    local_events,
    running,
    wait_synced,
)
from tests.sync.workload import domain_events

# Events per scenario: four batches of 16, so faults land mid-stream.
EVENTS = 64
POISON_SEQ = 30


@pytest.fixture
async def proxy(convex_double: ConvexDouble) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(convex_double.ingest_url, hang_s=1.5) as prx:
        yield prx


def _poisoner(event_id: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """A proxy rewrite that edits one event of any batch carrying it."""

    def rewrite(body: bytes) -> bytes:
        if event_id.encode() not in body:
            return body
        batch = json.loads(body)
        for event in batch["events"]:
            if event["event_id"] == event_id:
                edit(event)
        return json.dumps(batch).encode()

    return rewrite


def _unstorable(event: dict[str, Any]) -> None:
    event["data"]["$ref"] = "Convex refuses field names starting with $"


def _malformed(event: dict[str, Any]) -> None:
    del event["stream"]


async def _scenario_setup(name: str, proxy: FaultProxy, poison_id: str) -> None:
    if name == "refused":
        await proxy.refuse()
    elif name == "wrong_token":
        proxy.mode = "wrong_token"
    elif name == "poison_rejected":
        proxy.rewrite = _poisoner(poison_id, _unstorable)
    elif name == "poison_malformed":
        proxy.rewrite = _poisoner(poison_id, _malformed)
    else:
        proxy.faults.extend(FAULTS[name])


async def _scenario_heal(name: str, proxy: FaultProxy, worker: SyncWorker) -> None:
    """Undo a lasting fault once the worker has met it."""
    if name not in ("refused", "wrong_token"):
        return
    outcome = await worker.sync_now(wait=True)
    # The outcome, not status(): with tiny test backoffs the next round may have begun.
    expected = ("backoff", "network:") if name == "refused" else ("auth_error", "auth:")
    assert (outcome.ok, outcome.state) == (False, expected[0])
    assert outcome.error.startswith(expected[1])
    assert outcome.acked_seq == 0
    if name == "refused":
        await proxy.accept()
    else:
        proxy.mode = None


#: Queued per POST: "pass" lets one batch through so the fault lands mid-stream.
FAULTS: dict[str, list[str]] = {
    "reset": ["pass", "reset"],
    "timeout": ["pass", "timeout"],
    "server_errors": ["pass", "500", "500", "503"],
    "throttled": ["pass", "429:0.3"],
    "response_dropped": ["pass", "drop", "pass", "drop"],
}

SCENARIOS = [*FAULTS, "refused", "wrong_token", "poison_rejected", "poison_malformed"]


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_after_each_fault_the_remote_holds_exactly_the_local_events(
    scenario: str, store: EventStore, convex_double: ConvexDouble, proxy: FaultProxy
) -> None:
    """Refused, reset, timeout, 5xx, 429, lost answers, wrong token, poison: exactly once."""
    await store.append_batch(domain_events(EVENTS, "f"))
    events = await local_events(store)
    poison_id = events[POISON_SEQ - 1].event_id
    await _scenario_setup(scenario, proxy, poison_id)
    worker = SyncWorker(
        store, fast_config(proxy.url_for(convex_double.ingest_url), convex_double.token)
    )
    async with running(worker):
        await _scenario_heal(scenario, proxy, worker)
        status = await wait_synced(worker)

    poisoned = scenario.startswith("poison")
    quarantine = await store.sync.rejected_events()
    assert [r.event_id for r in quarantine] == ([poison_id] if poisoned else [])
    if scenario == "poison_rejected":
        assert quarantine[0].code == "invalid_value"
        assert "$ref" in quarantine[0].message
    if scenario == "poison_malformed":
        assert quarantine[0].code == "http_400"
    expected = [e for e in events if e.event_id != poison_id] if poisoned else events
    assert_remote_holds(convex_double, store.origin, expected)
    assert status.acked_seq == EVENTS
    assert status.rejected == len(quarantine)
    # The remote's high water stops below the quarantined event: the gap is visible.
    assert status.remote_high_water == (POISON_SEQ - 1 if poisoned else EVENTS)
    if scenario == "response_dropped":
        assert proxy.injected("drop") == 2
    if not poisoned:
        await assert_views_equal(convex_double, store)


async def test_retry_rejected_delivers_the_quarantine_once_the_remote_takes_it(
    store: EventStore, convex_double: ConvexDouble, proxy: FaultProxy
) -> None:
    """A quarantined poison event, re-queued once the remote takes it, arrives; the gap closes."""
    await store.append_batch(domain_events(EVENTS, "r"))
    events = await local_events(store)
    poison_id = events[POISON_SEQ - 1].event_id
    proxy.rewrite = _poisoner(poison_id, _unstorable)
    worker = SyncWorker(
        store, fast_config(proxy.url_for(convex_double.ingest_url), convex_double.token)
    )
    async with running(worker):
        await wait_synced(worker)
        assert (await worker.status()).rejected == 1
        proxy.rewrite = None
        assert await worker.retry_rejected() == 1
        outcome = await worker.sync_now(wait=True)
        # The retry may already have run with the trigger of retry_rejected.
        status = await wait_synced(worker)
    assert outcome.ok is True
    assert await store.sync.rejected_events() == []
    assert (status.rejected, status.remote_high_water) == (0, EVENTS)
    assert_remote_holds(convex_double, store.origin, events)
    await assert_views_equal(convex_double, store)


async def test_a_month_offline_then_everything_arrives_once_with_equal_views(
    store: EventStore, convex_double: ConvexDouble, proxy: FaultProxy
) -> None:
    """2,000 events recorded with no remote arrive once, in seq order; views match."""
    await proxy.refuse()
    worker = SyncWorker(
        store,
        fast_config(
            proxy.url_for(convex_double.ingest_url), convex_double.token, batch_max_events=256
        ),
    )
    async with running(worker):
        for chunk in range(10):
            await store.append_batch(domain_events(200, f"m{chunk}", seed=chunk))
        offline = await worker.sync_now(wait=True)
        assert (offline.ok, offline.state, offline.acked_seq) == (False, "backoff", 0)
        assert (await worker.status()).pending == 2000
        await proxy.accept()  # the network is back; the worker finds out by itself
        status = await wait_synced(worker)
    assert status.acked_seq == 2000
    assert_remote_holds(convex_double, store.origin, await local_events(store))
    await assert_views_equal(convex_double, store)


async def test_a_stop_mid_batch_loses_nothing(
    store: EventStore, convex_double: ConvexDouble, proxy: FaultProxy
) -> None:
    """Cancelled while the remote has committed a batch but not answered: resent as duplicates."""
    await store.append_batch(domain_events(EVENTS, "s"))
    proxy.hang_s = 30.0
    proxy.faults.extend(["pass", "slow"])
    config = fast_config(
        proxy.url_for(convex_double.ingest_url), convex_double.token, timeout_s=60.0
    )
    worker = SyncWorker(store, config)
    async with running(worker):
        await proxy.held.wait()
    state = await store.sync.state()
    assert state.acked_seq == 16  # the first batch only; the held one was not acked
    assert convex_double.status(store.origin)["events"] == 32  # ... but the remote has it

    again = SyncWorker(store, config)
    async with running(again):
        outcome = await again.sync_now(wait=True)
        await wait_synced(again)
    assert outcome.duplicates >= 16
    assert_remote_holds(convex_double, store.origin, await local_events(store))
