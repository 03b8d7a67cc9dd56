"""append_stream: one atomic transaction over many chunks, consumed lazily."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from atlasd.errors import BadRequest, EventIdConflict, InvalidValue, VersionConflict
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, StreamResult, verify


def ev(i: int, stream: str = "s", **kw: object) -> NewEvent:
    return NewEvent(stream=stream, type="T", data={"i": i}, **kw)  # type: ignore[arg-type]


def eid(i: int) -> str:
    return f"0190f00d-0000-7000-8000-{i:012x}"


def chunked(events: list[NewEvent], size: int) -> list[list[NewEvent]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


async def test_stream_appends_every_chunk_in_order(store: EventStore) -> None:
    """All events of all chunks get consecutive seqs and per-stream versions, in input order."""
    await store.append(ev(0, "other"))
    events = [ev(i, "ab"[i % 2]) for i in range(25)]
    result = await store.append_stream(chunked(events, 7))
    assert result == StreamResult(appended=25, duplicates=0, first_seq=2, last_seq=26)
    stored = await store.read(1, limit=100)
    assert [e.seq for e in stored] == list(range(2, 27))
    assert [e.data["i"] for e in stored] == list(range(25))
    assert [e.version for e in stored if e.stream == "a"] == list(range(1, 14))
    assert store.last_seq == 26


async def test_async_iterator_of_chunks_is_accepted(store: EventStore) -> None:
    """An async generator of chunks is consumed like a synchronous one."""

    async def produce() -> AsyncIterator[Sequence[NewEvent]]:
        for c in range(3):
            await asyncio.sleep(0)
            yield [ev(c * 10 + i) for i in range(10)]

    result = await store.append_stream(produce())
    assert (result.appended, result.first_seq, result.last_seq) == (30, 1, 30)
    assert len(await store.read(limit=100)) == 30


async def test_failure_in_a_late_chunk_stores_nothing(store: EventStore) -> None:
    """A conflict in the last chunk rolls back the chunks already written."""
    await store.append(ev(0, "x"))
    chunks = chunked([ev(i) for i in range(30)], 10)
    chunks[-1].append(ev(99, "x", expected_version=5))  # x is at version 1
    with pytest.raises(VersionConflict):
        await store.append_stream(chunks)
    assert store.last_seq == 1
    assert [e.seq for e in await store.read(limit=100)] == [1]
    after = await store.append(ev(1))
    assert (after.seq, after.version) == (2, 1)


async def test_invalid_event_in_a_late_chunk_names_its_overall_index(store: EventStore) -> None:
    """Validation paths count across chunks, and nothing of the stream is stored."""
    chunks = chunked([ev(i) for i in range(10)], 4)
    chunks[2][1] = NewEvent(stream="s", type="T", data={"bad": 2**70})
    with pytest.raises(InvalidValue, match=r"events\[9\]\.data\.bad"):
        await store.append_stream(chunks)
    assert store.last_seq == 0


async def test_an_exception_from_the_input_rolls_back(store: EventStore) -> None:
    """When the chunk iterator itself raises, nothing of the stream stays."""

    def produce() -> Iterator[list[NewEvent]]:
        yield [ev(1), ev(2)]
        raise OSError("spool file vanished")

    with pytest.raises(OSError, match="vanished"):
        await store.append_stream(produce())
    assert store.last_seq == 0
    assert await store.read() == []


async def test_views_roll_back_with_the_log(store: EventStore) -> None:
    """A failed stream leaves no view row either; a good one updates the views."""
    started = NewEvent(stream="b", type="BuildStarted", data={"build_id": "b1"})
    bad = NewEvent(stream="b", type="T", data={}, expected_version=7)
    with pytest.raises(VersionConflict):
        await store.append_stream([[started], [bad]])
    assert await store.query("builds") == []
    await store.append_stream([[started]])
    assert [row["build_id"] for row in await store.query("builds")] == ["b1"]


async def test_rerun_of_the_same_stream_is_all_duplicates(store: EventStore) -> None:
    """Re-ingesting a stream with client event_ids appends nothing and counts duplicates."""
    events = [ev(i, event_id=eid(i)) for i in range(20)]
    first = await store.append_stream(chunked(events, 6))
    again = await store.append_stream(chunked(events, 6))
    assert (first.appended, first.duplicates) == (20, 0)
    assert again == StreamResult(appended=0, duplicates=20, first_seq=None, last_seq=None)
    assert store.last_seq == 20


async def test_id_repeated_across_chunks_resolves_or_conflicts(store: EventStore) -> None:
    """An id seen in an earlier chunk is a duplicate with equal content, a conflict otherwise."""
    result = await store.append_stream([[ev(1, event_id=eid(1))], [ev(1, event_id=eid(1))]])
    assert (result.appended, result.duplicates) == (1, 1)
    with pytest.raises(EventIdConflict):
        await store.append_stream([[ev(2, event_id=eid(2))], [ev(3, event_id=eid(2))]])
    assert store.last_seq == 1


async def test_chunks_are_consumed_lazily(store: EventStore) -> None:
    """A chunk is taken from the input only after the previous one is written, so
    memory holds one chunk at a time."""
    taken: list[int] = []
    written_when_taken: list[int] = []

    def produce() -> Iterator[list[NewEvent]]:
        for c in range(5):
            taken.append(c)
            # what the writer has planned so far (the store's own counter moves at commit)
            written_when_taken.append(store._writer.last_seq)
            yield [ev(c * 3 + i) for i in range(3)]

    await store.append_stream(produce())
    assert taken == [0, 1, 2, 3, 4]
    assert written_when_taken == [0, 3, 6, 9, 12]


async def test_other_appends_wait_for_the_stream_and_then_commit(store: EventStore) -> None:
    """An append issued during a stream commits after it; readers see the stream only whole."""
    gate = asyncio.Event()
    seen_during: list[int] = []

    async def produce() -> AsyncIterator[list[NewEvent]]:
        yield [ev(i) for i in range(5)]
        gate.set()
        await asyncio.sleep(0.05)
        seen_during.append(len(await store.read(limit=100)))
        yield [ev(i) for i in range(5, 10)]

    async def other() -> int:
        await gate.wait()
        return (await store.append(ev(100, "other"))).seq

    result, other_seq = await asyncio.gather(store.append_stream(produce()), other())
    assert seen_during == [0]
    assert result.last_seq == 10
    assert other_seq == 11


async def test_bad_chunk_shapes_are_refused(store: EventStore) -> None:
    """A chunk that is not a sequence of NewEvent is bad_request and stores nothing."""
    with pytest.raises(BadRequest):
        await store.append_stream([[ev(1)], "nope"])  # type: ignore[list-item]
    with pytest.raises(BadRequest):
        await store.append_stream([[ev(1), {"stream": "s"}]])  # type: ignore[list-item]
    with pytest.raises(BadRequest):
        await store.append_stream(42)  # type: ignore[arg-type]
    assert store.last_seq == 0


async def test_cancelled_stream_stores_nothing_and_store_goes_on(store: EventStore) -> None:
    """Cancelling a stream mid-way rolls it back; later appends work."""
    started = asyncio.Event()

    async def produce() -> AsyncIterator[list[NewEvent]]:
        yield [ev(1)]
        started.set()
        await asyncio.sleep(30)
        yield [ev(2)]

    task = asyncio.create_task(store.append_stream(produce()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.last_seq == 0
    assert (await store.append(ev(3))).seq == 1


@pytest.mark.slow
async def test_large_stream_is_one_consistent_commit(data_dir: Path) -> None:
    """20,000 events in 100 chunks commit whole, and verify finds the log and views sound."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:

        def produce() -> Iterator[list[NewEvent]]:
            for c in range(100):
                yield [
                    NewEvent(
                        stream=f"build:b{c}",
                        type="TaskLogged",
                        data={"build_id": f"b{c}", "task_id": f"t{i}", "status": "pending"},
                    )
                    for i in range(200)
                ]

        result = await store.append_stream(produce())
        assert (result.appended, result.first_seq, result.last_seq) == (20_000, 1, 20_000)
        assert len(await store.query("tasks", limit=10_000)) == 10_000
    report = verify(data_dir)
    assert report.ok, report.findings
