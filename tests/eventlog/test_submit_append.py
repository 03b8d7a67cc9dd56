"""submit_append: the coroutine-free single append the daemon answers from callbacks."""

from __future__ import annotations

import asyncio

import pytest

from atlasd.errors import InvalidValue, Unavailable, VersionConflict
from atlasd.eventlog import EventStore, NewEvent


def ev(stream: str = "s", **kw: object) -> NewEvent:
    return NewEvent(stream=stream, type="T", data={"n": 1}, **kw)  # type: ignore[arg-type]


async def test_submitted_appends_commit_in_submission_order(store: EventStore) -> None:
    """Futures resolve to one result each, with seqs in the order they were submitted."""
    futures = [store.submit_append(ev(f"s{i % 3}")) for i in range(10)]
    results = [(await future)[0] for future in futures]
    assert [r.seq for r in results] == list(range(1, 11))
    assert store.last_seq == 10
    events = await store.read(0)
    assert [e.stream for e in events] == [f"s{i % 3}" for i in range(10)]


async def test_an_invalid_event_raises_at_once_and_queues_nothing(store: EventStore) -> None:
    """Validation happens before queueing: the call raises and the log stays empty."""
    with pytest.raises(InvalidValue):
        store.submit_append(ev(""))
    await store.append(ev())
    assert store.last_seq == 1


async def test_a_commit_time_refusal_is_the_future_exception(store: EventStore) -> None:
    """A stale expected_version fails through the future, not the call."""
    await store.append(ev())
    future = store.submit_append(ev(expected_version=0))
    with pytest.raises(VersionConflict):
        await future
    assert store.last_seq == 1


async def test_a_closing_store_refuses_submissions(store: EventStore) -> None:
    """Once close has begun, submit_append raises unavailable instead of queueing."""
    closing = asyncio.ensure_future(store.close())
    for _ in range(5):  # let close() start (it stays refusing once it has)
        await asyncio.sleep(0)
    with pytest.raises(Unavailable):
        store.submit_append(ev())
    await closing
