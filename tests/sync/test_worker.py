"""The worker against the real store and the minimal local ingest server."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
import pytest

from atlasd.config import SyncConfig
from atlasd.eventlog import EventStore
from atlasd.events import NewEvent
from atlasd.sync.worker import SyncWorker
from tests.sync.fault_proxy import FaultProxy
from tests.sync.helpers import fast_config, local_events, running, wait_synced
from tests.sync.ingest_server import IngestServer
from tests.sync.workload import domain_events

CONTRACT_FIELDS = {
    "state",
    "acked_seq",
    "pending",
    "oldest_pending_ms",
    "rejected",
    "last_error",
    "next_attempt_ms",
}


def _notes(count: int, size: int = 50) -> list[NewEvent]:
    return [
        NewEvent(stream=f"note:{i % 5}", type="Note", data={"i": i, "text": "x" * size})
        for i in range(count)
    ]


async def test_the_backlog_arrives_once_in_seq_order_in_bounded_batches(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """100 events go as batches of at most 16, in seq order, each exactly once."""
    await store.append_batch(domain_events(100, "w"))
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, ingest_server.token))
    async with running(worker):
        status = await wait_synced(worker)
    arrived = ingest_server.state.decoded()
    assert [e["seq"] for e in arrived] == list(range(1, 101))
    assert arrived == [msgspec.to_builtins(e) for e in await local_events(store)]
    assert max(ingest_server.state.batch_sizes) == 16
    assert ingest_server.state.duplicates == 0
    assert (status.acked_seq, status.rejected, status.remote_high_water) == (100, 0, 100)


async def test_batches_are_cut_by_encoded_bytes_too(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """With a 4 KiB body budget, 1 KiB events travel at most three per batch."""
    await store.append_batch(_notes(20, size=1000))
    config = fast_config(ingest_server.ingest_url, ingest_server.token, batch_max_bytes=4096)
    worker = SyncWorker(store, config)
    async with running(worker):
        await wait_synced(worker)
    assert sum(ingest_server.state.batch_sizes) == 20
    assert max(ingest_server.state.batch_sizes) == 3


async def test_an_event_too_large_for_the_remote_is_quarantined_alone(
    store: EventStore, short_dir: Any
) -> None:
    """413 splits the batch; the event still refused alone is quarantined, the rest go on."""
    await store.append_batch(_notes(10))
    big = await store.append(NewEvent(stream="note:big", type="Note", data={"blob": "y" * 30_000}))
    await store.append_batch(_notes(10))
    with IngestServer("t", max_body=20_000) as server:
        worker = SyncWorker(store, fast_config(server.ingest_url, "t"))
        async with running(worker):
            status = await wait_synced(worker)
        stored = {e["event_id"] for e in server.state.decoded()}
    everything = await local_events(store)
    assert stored == {e.event_id for e in everything} - {big.event_id}
    quarantine = await store.sync.rejected_events()
    assert [(r.event_id, r.code) for r in quarantine] == [(big.event_id, "http_413")]
    assert (status.acked_seq, status.rejected) == (21, 1)


async def test_backlog_reads_stay_bounded_whatever_the_backlog(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """The worker never asks the store for more than one batch of rows at a time."""
    await store.append_batch(_notes(500))
    limits: list[int] = []
    read_raw = store.read_raw

    async def spy(
        from_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]:
        limits.append(limit)
        return await read_raw(from_seq, limit, max_bytes)

    store.read_raw = spy  # type: ignore[method-assign]
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, ingest_server.token))
    async with running(worker):
        await wait_synced(worker)
    assert len(ingest_server.state.events) == 500
    assert limits
    assert max(limits) <= 16


async def test_large_events_are_read_and_sent_within_the_byte_budget(
    store: EventStore, short_dir: Any
) -> None:
    """300 KB events: each read holds at most one batch of bytes, every batch fits the
    remote's body limit, and every event arrives."""
    await store.append_batch(_notes(12, size=300_000))
    budget = 1 << 20
    read_sizes: list[tuple[int, int]] = []  # (rows, bytes) of each backlog read
    read_raw = store.read_raw

    async def spy(
        from_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]:
        rows = await read_raw(from_seq, limit, max_bytes)
        read_sizes.append((len(rows), sum(len(raw) for _, raw in rows)))
        return rows

    store.read_raw = spy  # type: ignore[method-assign]
    # the server refuses (413) any body over the budget, so a batch past it would be split
    with IngestServer("t", max_body=budget) as server:
        config = fast_config(server.ingest_url, "t", batch_max_bytes=budget)
        worker = SyncWorker(store, config)
        async with running(worker):
            status = await wait_synced(worker)
        assert [e["seq"] for e in server.state.decoded()] == list(range(1, 13))
        assert server.state.batch_sizes == [3, 3, 3, 3]
    assert (status.acked_seq, status.rejected) == (12, 0)
    assert read_sizes
    assert all(count == 1 or size <= budget for count, size in read_sizes)
    assert max(count for count, _ in read_sizes) <= 3


async def test_an_append_wakes_an_idle_worker(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """With an hour-long timer, appending is enough to get events sent."""
    config = fast_config(ingest_server.ingest_url, ingest_server.token, interval_s=3600.0)
    worker = SyncWorker(store, config)
    async with running(worker):
        await wait_synced(worker)
        await store.append_batch(_notes(3))
        status = await wait_synced(worker)
    assert status.acked_seq == 3
    assert len(ingest_server.state.events) == 3


async def test_status_fills_every_contract_field(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """status() has every sync field of the contract, pending counted from the cursor."""
    await store.append_batch(_notes(7))
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, ingest_server.token))
    before = await worker.status()
    assert set(msgspec.to_builtins(before)) >= CONTRACT_FIELDS | {"remote_high_water"}
    assert (before.state, before.pending, before.acked_seq) == ("idle", 7, 0)
    assert isinstance(before.oldest_pending_ms, int)
    async with running(worker):
        after = await wait_synced(worker)
    assert (after.pending, after.acked_seq, after.oldest_pending_ms) == (0, 7, None)
    assert after.last_error is None
    assert after.next_attempt_ms is None


async def test_a_disabled_worker_says_so_and_does_nothing(store: EventStore) -> None:
    """Without an ingest URL: state disabled, sync_now is not triggered."""
    worker = SyncWorker(store, SyncConfig())
    assert (await worker.status()).state == "disabled"
    outcome = await worker.sync_now(wait=True)
    assert outcome.triggered is False
    assert "disabled" in outcome.error


async def test_a_wrong_token_is_auth_error_and_never_shows_the_token(
    store: EventStore, ingest_server: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """401: state auth_error, nothing acked; the token is in no status, outcome or log line."""
    caplog.set_level(logging.DEBUG)
    secret = "never-show-" + ingest_server.token
    await store.append_batch(_notes(5))
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, secret, auth_retry_s=60.0))
    async with running(worker):
        outcome = await worker.sync_now(wait=True)
        status = await worker.status()
    assert outcome.ok is False
    assert status.state == "auth_error"
    assert status.last_error.startswith("auth:")
    assert (status.acked_seq, status.pending) == (0, 5)
    assert status.next_attempt_ms > time.time() * 1000 + 30_000
    text = msgspec.json.encode([outcome, status]).decode() + caplog.text + repr(worker._config)
    assert secret not in text
    assert "auth_error" in caplog.text


async def test_a_trigger_cuts_a_long_backoff_short(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """After a failure with a long backoff, sync_now sends at once when the remote is back."""
    await store.append_batch(_notes(5))
    async with FaultProxy(ingest_server.ingest_url) as proxy:
        await proxy.refuse()
        config = fast_config(
            proxy.url_for(ingest_server.ingest_url),
            ingest_server.token,
            backoff_base_s=30.0,
            backoff_cap_s=60.0,
        )
        worker = SyncWorker(store, config)
        async with running(worker):
            failed = await worker.sync_now(wait=True)
            assert (failed.ok, failed.state) == (False, "backoff")
            assert failed.error.startswith("network:")
            await proxy.accept()
            outcome = await worker.sync_now(wait=True)
    assert (outcome.ok, outcome.sent, outcome.acked_seq) == (True, 5, 5)


async def test_retry_after_delays_the_next_attempt(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """A 429 with Retry-After: 2 schedules the next try no sooner than 2 s later."""
    await store.append_batch(_notes(3))
    async with FaultProxy(ingest_server.ingest_url) as proxy:
        proxy.faults.append("429:2")
        worker = SyncWorker(
            store, fast_config(proxy.url_for(ingest_server.ingest_url), ingest_server.token)
        )
        async with running(worker):
            before_ms = time.time() * 1000
            outcome = await worker.sync_now(wait=True)
            assert outcome.error.startswith("throttled:")
            assert outcome.next_attempt_ms >= before_ms + 2000
            status = await wait_synced(worker)
    assert status.acked_seq == 3
    assert proxy.injected("429") == 1


async def test_consecutive_failures_are_counted_and_reset_on_success(
    store: EventStore, ingest_server: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Three 500s leave failures=3; the next success resets them and logs one recovery."""
    caplog.set_level(logging.INFO, logger="atlasd.sync")
    await store.append_batch(_notes(3))
    async with FaultProxy(ingest_server.ingest_url) as proxy:
        proxy.faults.extend(["500", "500", "500"])
        config = fast_config(
            proxy.url_for(ingest_server.ingest_url),
            ingest_server.token,
            backoff_base_s=60.0,
            backoff_cap_s=120.0,
        )
        worker = SyncWorker(store, config)
        async with running(worker):
            for _ in range(3):
                assert (await worker.sync_now(wait=True)).ok is False
            assert (await worker.status()).failures == 3
            assert (await worker.sync_now(wait=True)).ok is True
            status = await wait_synced(worker)
    assert (status.failures, status.state, status.acked_seq) == (0, "idle", 3)
    assert caplog.text.count("sync.recovered after 3 failures") == 1
    # Rate-limited: the first failure is logged, the next two are suppressed.
    assert caplog.text.count("sync.failed") == 1


async def test_a_failure_mid_stream_leaves_the_cursor_at_the_last_acknowledged_batch(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """Two batches answered 200, the third 500: the durable cursor is exactly 32."""
    await store.append_batch(_notes(64))
    async with FaultProxy(ingest_server.ingest_url) as proxy:
        proxy.faults.extend(["pass", "pass", "500"])
        config = fast_config(
            proxy.url_for(ingest_server.ingest_url),
            ingest_server.token,
            backoff_base_s=60.0,
            backoff_cap_s=120.0,
        )
        worker = SyncWorker(store, config)
        async with running(worker):
            outcome = await worker.sync_now(wait=True)
            assert (outcome.ok, outcome.acked_seq, outcome.sent) == (False, 32, 32)
            assert (await store.sync.state()).acked_seq == 32
            assert (await worker.sync_now(wait=True)).acked_seq == 64
    assert ingest_server.state.duplicates == 0
    assert len(ingest_server.state.events) == 64
