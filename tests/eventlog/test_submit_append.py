"""submit_append: the coroutine-free single append the daemon answers from callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from atlasd.errors import AtlasdError, InvalidValue, Unavailable, VersionConflict
from atlasd.eventlog import EventStore, NewEvent
from atlasd.eventlog.store import AppendOutcome


def ev(stream: str = "s", **kw: object) -> NewEvent:
    return NewEvent(stream=stream, type="T", data={"n": 1}, **kw)  # type: ignore[arg-type]


class Outcomes:
    """Collects what the store tells each submitted append, in the order it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[int, AppendOutcome]] = []
        self._changed = asyncio.Event()

    def callback(self, n: int) -> Callable[[AppendOutcome], None]:
        def done(outcome: AppendOutcome) -> None:
            self.told.append((n, outcome))
            self._changed.set()

        return done

    async def wait_for(self, count: int) -> None:
        while len(self.told) < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 10)


async def test_submitted_appends_commit_in_submission_order(store: EventStore) -> None:
    """Each callback gets one result, with seqs in the order the appends were submitted."""
    outcomes = Outcomes()
    for i in range(10):
        store.submit_append(ev(f"s{i % 3}"), outcomes.callback(i))
    await outcomes.wait_for(10)
    assert [n for n, _ in outcomes.told] == list(range(10))
    seqs = [o[0].seq for _, o in outcomes.told if not isinstance(o, AtlasdError)]
    assert seqs == list(range(1, 11))
    assert store.last_seq == 10
    events = await store.read(0)
    assert [e.stream for e in events] == [f"s{i % 3}" for i in range(10)]


async def test_the_callback_runs_only_after_the_commit(store: EventStore) -> None:
    """When the callback is told, the event is already readable (committed)."""
    seen: list[int] = []
    told = asyncio.Event()

    def done(outcome: AppendOutcome) -> None:
        seen.append(store.last_seq)
        told.set()

    store.submit_append(ev(), done)
    assert seen == []  # nothing is told from inside the call
    await asyncio.wait_for(told.wait(), 10)
    assert seen == [1]
    assert len(await store.read(0)) == 1


async def test_an_invalid_event_raises_at_once_and_queues_nothing(store: EventStore) -> None:
    """Validation happens before queueing: the call raises and the log stays empty."""
    outcomes = Outcomes()
    with pytest.raises(InvalidValue):
        store.submit_append(ev(""), outcomes.callback(0))
    await store.append(ev())
    assert store.last_seq == 1
    assert outcomes.told == []


async def test_a_commit_time_refusal_is_the_callbacks_outcome(store: EventStore) -> None:
    """A stale expected_version comes to the callback as the error, not from the call."""
    await store.append(ev())
    outcomes = Outcomes()
    store.submit_append(ev(expected_version=0), outcomes.callback(0))
    await outcomes.wait_for(1)
    assert isinstance(outcomes.told[0][1], VersionConflict)
    assert store.last_seq == 1


async def test_a_failing_callback_does_not_stop_the_others(store: EventStore) -> None:
    """A callback that raises is logged; the rest of its group is still told."""
    outcomes = Outcomes()

    def broken(outcome: AppendOutcome) -> None:
        raise RuntimeError("callback bug")

    store.submit_append(ev(), broken)
    store.submit_append(ev(), outcomes.callback(1))
    await outcomes.wait_for(1)
    assert store.last_seq == 2
    await store.append(ev())  # the writer goes on
    assert store.last_seq == 3


async def test_a_closing_store_refuses_submissions(store: EventStore) -> None:
    """Once close has begun, submit_append raises unavailable instead of queueing."""
    closing = asyncio.ensure_future(store.close())
    for _ in range(5):  # let close() start (it stays refusing once it has)
        await asyncio.sleep(0)
    with pytest.raises(Unavailable):
        store.submit_append(ev(), Outcomes().callback(0))
    await closing
