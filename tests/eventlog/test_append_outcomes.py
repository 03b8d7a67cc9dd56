"""Awaited appends and callback appends of one group each get their own outcome."""

from __future__ import annotations

import asyncio

import pytest

from atlasd.errors import AtlasdError, VersionConflict
from atlasd.eventlog import EventStore, NewEvent
from atlasd.eventlog.store import AppendOutcome


def ev(stream: str, **kw: object) -> NewEvent:
    return NewEvent(stream=stream, type="T", data={"n": 1}, **kw)  # type: ignore[arg-type]


async def test_awaited_and_called_back_appends_of_one_group_are_each_answered(
    store: EventStore,
) -> None:
    """Futures and callbacks queued together get the results of their own events."""
    told: list[AppendOutcome] = []
    all_told = asyncio.Event()

    def done(outcome: AppendOutcome) -> None:
        told.append(outcome)
        if len(told) == 5:
            all_told.set()

    awaited = [asyncio.ensure_future(store.append(ev(f"a{i}"))) for i in range(5)]
    for i in range(5):
        store.submit_append(ev(f"c{i}"), done)
    results = await asyncio.gather(*awaited)
    await asyncio.wait_for(all_told.wait(), 10)
    assert [r.version for r in results] == [1] * 5
    assert len({r.seq for r in results}) == 5
    called = [o[0] for o in told if not isinstance(o, AtlasdError)]
    stream_at = {e.seq: e.stream for e in await store.read(0)}
    assert [stream_at[r.seq] for r in results] == [f"a{i}" for i in range(5)]
    assert [stream_at[r.seq] for r in called] == [f"c{i}" for i in range(5)]
    assert len(stream_at) == 10


async def test_a_refused_awaited_append_raises_while_its_group_commits(store: EventStore) -> None:
    """A conflict raises in its own appender only; the others of the group are stored."""
    first = asyncio.ensure_future(store.append(ev("s")))
    clash = asyncio.ensure_future(store.append(ev("s", expected_version=0)))
    other = asyncio.ensure_future(store.append(ev("t")))
    assert (await first).version == 1
    with pytest.raises(VersionConflict):
        await clash
    assert (await other).version == 1
    assert store.last_seq == 2


async def test_a_cancelled_appender_leaves_its_event_stored_and_the_store_serving(
    store: EventStore,
) -> None:
    """Cancelling an awaited append once queued does not undo it nor break the writer."""
    cancelled = asyncio.ensure_future(store.append(ev("gone")))
    kept = asyncio.ensure_future(store.append(ev("kept")))
    await asyncio.sleep(0)  # both are queued
    cancelled.cancel()
    assert (await kept).seq == 2
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    after = await store.append(ev("after"))
    assert after.seq == 3
    assert [e.stream for e in await store.read(0)] == ["gone", "kept", "after"]
