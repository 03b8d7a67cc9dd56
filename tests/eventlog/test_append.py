"""Appends: positions, idempotency, conflicts, batches, and reading them back."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import msgspec
import pytest

from atlasd.errors import EventIdConflict, InvalidValue, Unavailable, VersionConflict
from atlasd.eventlog import EventStore, NewEvent, StoreConfig

ID = "0190F00D-0000-7000-8000-0000000000AA"


def ev(stream: str = "s", type: str = "T", **kw: object) -> NewEvent:
    data = kw.pop("data", {"n": 1})
    return NewEvent(stream=stream, type=type, data=data, **kw)  # type: ignore[arg-type]


async def test_seq_is_gap_free_and_versions_count_per_stream(store: EventStore) -> None:
    """Each append takes the next seq; versions count 1, 2, 3 within each stream."""
    results = [await store.append(ev(stream)) for stream in ("a", "b", "a", "a", "b")]
    assert [r.seq for r in results] == [1, 2, 3, 4, 5]
    assert [r.version for r in results] == [1, 1, 2, 3, 2]
    assert store.last_seq == 5
    assert not any(r.duplicate for r in results)


async def test_generated_event_ids_are_lowercase_uuid7(store: EventStore) -> None:
    """Events without an id get a canonical lowercase UUIDv7, increasing with seq."""
    results = [await store.append(ev()) for _ in range(20)]
    ids = [r.event_id for r in results]
    assert ids == sorted(ids)
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert parsed.version == 7
        assert str(parsed) == event_id


async def test_client_event_id_is_stored_lowercase(store: EventStore) -> None:
    """A client's id in any case is accepted and stored in canonical lowercase."""
    result = await store.append(ev(event_id=ID))
    assert result.event_id == ID.lower()
    assert (await store.read())[0].event_id == ID.lower()


@pytest.mark.parametrize("bad", ["", "not-a-uuid", ID.replace("-", ""), "{" + ID + "}", ID + " "])
async def test_malformed_event_id_is_refused_and_nothing_is_stored(
    store: EventStore, bad: str
) -> None:
    """An event_id not in 8-4-4-4-12 hex form is invalid_value and appends nothing."""
    with pytest.raises(InvalidValue, match="event_id"):
        await store.append(ev(event_id=bad))
    assert store.last_seq == 0


async def test_same_event_id_and_content_returns_original_position(store: EventStore) -> None:
    """Retrying an append returns the first position with duplicate=True and stores nothing."""
    first = await store.append(ev(event_id=ID, data={"a": 1, "b": [1, 2]}))
    await store.append(ev())
    again = await store.append(ev(event_id=ID.lower(), data={"b": [1, 2], "a": 1}))
    assert again.duplicate
    assert (again.seq, again.version, again.event_id) == (first.seq, first.version, first.event_id)
    assert store.last_seq == 2


async def test_a_large_retried_batch_finds_each_stored_id_in_every_lookup_chunk(
    store: EventStore,
) -> None:
    """A batch of more client ids than one lookup binds, mixing stored ones (retries) with
    new ones, answers every retry with its first position and appends only the new; one
    stored id with other content fails the whole batch."""
    ids = [str(uuid.UUID(int=(0x0190F00D << 96) | (7 << 76) | (2 << 62) | i)) for i in range(700)]
    first = await store.append_batch(
        [ev(f"s{i % 3}", event_id=i_d, data={"i": i}) for i, i_d in enumerate(ids) if i % 2]
    )
    stored = {r.event_id: r for r in first}
    mixed = [ev(f"s{i % 3}", event_id=i_d, data={"i": i}) for i, i_d in enumerate(ids)]
    results = await store.append_batch(mixed)
    assert [r.event_id for r in results] == ids
    for i, result in enumerate(results):
        assert result.duplicate == bool(i % 2)
        if result.duplicate:
            assert (result.seq, result.version) == (stored[ids[i]].seq, stored[ids[i]].version)
    assert store.last_seq == 700
    with pytest.raises(EventIdConflict, match=ids[699]):
        await store.append_batch(
            [ev("n", event_id=str(uuid.uuid4())), ev("s0", event_id=ids[699], data={"i": 0})]
        )
    assert store.last_seq == 700


async def test_duplicate_wins_over_a_stale_expected_version(store: EventStore) -> None:
    """A retried append with expected_version still gets its original position back."""
    first = await store.append(ev(event_id=ID, expected_version=0))
    await store.append(ev())
    again = await store.append(ev(event_id=ID, expected_version=0))
    assert again.duplicate
    assert again.seq == first.seq


async def test_an_integral_float_is_the_same_content_as_its_integer(store: EventStore) -> None:
    """1.0 is logged as 1 (JSON has one number type): a retry carrying it is a duplicate."""
    first = await store.append(NewEvent(event_id=ID, stream="s", type="T", data={"n": 1}))
    again = await store.append(NewEvent(event_id=ID, stream="s", type="T", data={"n": 1.0}))
    assert again.duplicate
    assert again.seq == first.seq


@pytest.mark.parametrize(
    "change", [{"stream": "other"}, {"type": "Other"}, {"data": {"n": 2}}, {"data": {"n": 1.5}}]
)
async def test_same_event_id_with_other_content_is_a_conflict(
    store: EventStore, change: dict[str, object]
) -> None:
    """Same event_id with a different stream, type or data is event_id_conflict naming the id."""
    await store.append(ev(event_id=ID))
    fields = {"stream": "s", "type": "T", "data": {"n": 1}, **change}
    with pytest.raises(EventIdConflict, match=ID.lower()) as info:
        await store.append(NewEvent(event_id=ID, **fields))  # type: ignore[arg-type]
    assert info.value.to_wire()["event_id"] == ID.lower()
    assert store.last_seq == 1


async def test_meta_does_not_take_part_in_idempotency(store: EventStore) -> None:
    """A retry whose meta differs (say, a new attempt number) is still a duplicate."""
    await store.append(ev(event_id=ID, meta={"attempt": 1}))
    again = await store.append(ev(event_id=ID, meta={"attempt": 2}))
    assert again.duplicate
    assert (await store.read())[0].meta == {"attempt": 1}


async def test_expected_version_checks_the_stream(store: EventStore) -> None:
    """expected_version 0 needs a new stream; otherwise it must equal the current version."""
    await store.append(ev("x", expected_version=0))
    with pytest.raises(VersionConflict) as info:
        await store.append(ev("x", expected_version=0))
    assert info.value.current_version == 1
    assert info.value.to_wire()["current_version"] == 1
    assert (await store.append(ev("x", expected_version=1))).version == 2
    with pytest.raises(VersionConflict):
        await store.append(ev("x", expected_version=5))
    assert store.last_seq == 2


async def test_batch_is_all_or_nothing(store: EventStore) -> None:
    """A batch with one conflicting event stores none of its events."""
    await store.append(ev("x"))
    with pytest.raises(VersionConflict):
        await store.append_batch([ev("y"), ev("z"), ev("x", expected_version=0)])
    assert store.last_seq == 1
    assert await store.read(stream="y") == []


async def test_batch_expected_version_counts_earlier_events_of_the_batch(
    store: EventStore,
) -> None:
    """In a batch, expected_version sees the batch's own earlier events."""
    results = await store.append_batch(
        [ev("x", expected_version=0), ev("x", expected_version=1), ev("x", expected_version=2)]
    )
    assert [r.version for r in results] == [1, 2, 3]
    with pytest.raises(VersionConflict):
        await store.append_batch([ev("y", expected_version=0), ev("y", expected_version=0)])


async def test_repeated_id_in_a_batch_resolves_to_its_first_occurrence(store: EventStore) -> None:
    """The same id twice with the same content in one batch is stored once."""
    results = await store.append_batch([ev(event_id=ID), ev("t"), ev(event_id=ID)])
    assert [r.seq for r in results] == [1, 2, 1]
    assert [r.duplicate for r in results] == [False, False, True]
    assert store.last_seq == 2


async def test_repeated_id_with_other_content_fails_the_whole_batch(store: EventStore) -> None:
    """The same id twice with different content in one batch stores nothing."""
    with pytest.raises(EventIdConflict):
        await store.append_batch([ev(event_id=ID), ev(event_id=ID, data={"n": 2})])
    assert store.last_seq == 0


async def test_batch_errors_name_the_event_index(store: EventStore) -> None:
    """Validation errors in a batch say which event is wrong."""
    with pytest.raises(InvalidValue, match=r"^events\[1\]\.data\.\$x"):
        await store.append_batch([ev(), ev(data={"$x": 1})])
    assert store.last_seq == 0


async def test_empty_batch_appends_nothing(store: EventStore) -> None:
    """An empty batch returns no results and leaves the log as it was."""
    assert await store.append_batch([]) == []
    assert store.last_seq == 0


async def test_recorded_at_is_the_store_clock_unless_overridden(store: EventStore) -> None:
    """recorded_at is ms since the epoch by default; the override is stored as given."""
    before = time.time_ns() // 1_000_000
    await store.append(ev())
    after = time.time_ns() // 1_000_000
    await store.append(ev(), recorded_at=42)
    first, second = await store.read()
    assert before <= first.recorded_at <= after
    assert second.recorded_at == 42


async def test_read_filters_by_position_stream_and_types(store: EventStore) -> None:
    """read returns events after from_seq, optionally of one stream and some types."""
    await store.append_batch([ev("a", "A"), ev("b", "B"), ev("a", "B"), ev("b", "A"), ev("a", "C")])
    assert [e.seq for e in await store.read()] == [1, 2, 3, 4, 5]
    assert [e.seq for e in await store.read(from_seq=3)] == [4, 5]
    assert [e.seq for e in await store.read(stream="a")] == [1, 3, 5]
    assert [e.seq for e in await store.read(types=["A", "C"])] == [1, 4, 5]
    assert [e.seq for e in await store.read(stream="a", types=["B", "C"], limit=1)] == [3]
    assert [e.seq for e in await store.read(types=[])] == [1, 2, 3, 4, 5]
    assert await store.read(limit=0) == []


async def test_read_raw_is_the_encoded_event(store: EventStore) -> None:
    """read_raw gives exactly msgspec's JSON encoding of each Event."""
    await store.append(ev(data={"z": 1, "a": {"y": 2, "b": None}}, meta={"tool": "t"}))
    [(seq, raw)] = await store.read_raw(0, 10)
    [event] = await store.read()
    assert seq == 1
    assert raw == msgspec.json.encode(event)
    decoded = msgspec.json.decode(raw)
    assert decoded["origin"] == store.origin
    assert set(decoded) == {
        "seq", "event_id", "stream", "version", "type", "data", "meta", "recorded_at",
        "occurred_at", "origin", "hash",
    }  # fmt: skip


async def test_iter_events_streams_the_whole_log(store: EventStore) -> None:
    """iter_events yields every event in order across many chunks."""
    await store.append_batch([ev(data={"i": i}) for i in range(250)])
    seen = [e.data["i"] async for e in store.iter_events(chunk=100)]
    assert seen == list(range(250))
    assert [e.seq async for e in store.iter_events(from_seq=248)] == [249, 250]


async def test_wait_for_append_wakes_on_commit(store: EventStore) -> None:
    """A waiter returns once an append commits after the seq it waited from."""
    waiter = asyncio.create_task(store.wait_for_append(0))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await store.append(ev())
    assert await asyncio.wait_for(waiter, 5) == 1


async def test_wait_for_append_returns_at_timeout(store: EventStore) -> None:
    """With a timeout and no append, wait_for_append returns the unchanged last_seq."""
    await store.append(ev())
    assert await store.wait_for_append(1, timeout=0.05) == 1
    assert await store.wait_for_append(0, timeout=0.05) == 1


async def test_origin_is_made_once_per_data_dir(data_dir: Path) -> None:
    """The origin is a UUID that stays the same across reopenings."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        origin = store.origin
        await store.append(ev())
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert store.origin == origin
        assert store.last_seq == 1
        assert (await store.append(ev())).seq == 2
    assert str(uuid.UUID(origin)) == origin


async def test_data_dir_is_created_private(tmp_path: Path) -> None:
    """A new data dir is created with mode 0700."""
    data_dir = tmp_path / "new" / "data"
    async with await EventStore.open(StoreConfig(data_dir=data_dir)):
        pass
    assert data_dir.stat().st_mode & 0o777 == 0o700


async def test_stats_counts_events_streams_and_projections(store: EventStore) -> None:
    """stats reports events, streams, last_seq, database bytes and each projection."""
    await store.append_batch([ev("a"), ev("b"), ev("a")])
    stats = await store.stats()
    assert (stats.events, stats.streams, stats.last_seq) == (3, 2, 3)
    assert stats.db_bytes > 0
    assert {p.name for p in stats.projections} == {
        "builds", "tasks", "executions", "patterns", "learnings",
        "threads", "messages", "workflow_runs", "traces", "evals",
        "workflows", "workflow_executions", "assets", "deployments", "agent_jobs",
    }  # fmt: skip
    assert all(p.checkpoint == 3 and p.version >= 1 for p in stats.projections)


async def test_closed_store_refuses_appends(data_dir: Path) -> None:
    """After close, appends are unavailable instead of hanging."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    await store.close()
    with pytest.raises(Unavailable):
        await store.append(ev())
    await store.close()  # idempotent


async def test_close_commits_what_was_queued(data_dir: Path) -> None:
    """Appends queued before close are committed and answered."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    pending = [asyncio.create_task(store.append(ev())) for _ in range(50)]
    await asyncio.sleep(0)
    await store.close()
    results = await asyncio.gather(*pending)
    assert sorted(r.seq for r in results) == list(range(1, 51))


async def test_concurrent_closes_all_return(data_dir: Path) -> None:
    """Several tasks closing the store at once all return, and appends are refused after."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    append = asyncio.create_task(store.append(ev()))
    await asyncio.sleep(0)
    await asyncio.gather(store.close(), store.close(), store.close())
    assert (await append).seq == 1
    with pytest.raises(Unavailable):
        await store.append(ev())
