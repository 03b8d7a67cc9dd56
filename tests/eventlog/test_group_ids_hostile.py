"""Client ids and counters across the requests of one group commit, a rolled-back group
and a streamed append: an id is known only once it is stored, and every event is counted
once (appended, duplicate or refused)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from atlasd.errors import EventIdConflict, Unavailable, VersionConflict
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify
from atlasd.reports import CountersSnapshot


def cid(i: int) -> str:
    """A valid client id, distinct per ``i``."""
    return str(uuid.UUID(int=(0x0BADF00D << 96) | (4 << 76) | (2 << 62) | (i + 1)))


def ev(i: int, *, data: dict[str, object] | None = None, **extra: object) -> NewEvent:
    return NewEvent(
        stream=f"s{i}",
        type="T",
        data={"i": i} if data is None else data,
        event_id=cid(i),
        **extra,  # type: ignore[arg-type]
    )


def _delta(before: CountersSnapshot, after: CountersSnapshot) -> tuple[int, int, dict[str, int]]:
    refused = {
        code: after.refused.get(code, 0) - before.refused.get(code, 0)
        for code in after.refused
        if after.refused.get(code, 0) != before.refused.get(code, 0)
    }
    return after.appended - before.appended, after.duplicates - before.duplicates, refused


async def test_a_mixed_group_counts_each_event_once(store: EventStore) -> None:
    """One group holding a retry of a stored id, a conflicting copy of it, a repeat of an
    id first appended earlier in the group and a version conflict: the counters grow by
    exactly the events appended, answered as duplicates and refused."""
    await store.append(ev(1))
    before = store.counters.snapshot()
    outcomes = await asyncio.gather(
        store.append_batch([ev(2), ev(1)]),  # one new, one duplicate of a stored id
        store.append_batch([ev(1, data={"other": True})]),  # conflict with the stored id
        store.append_batch([ev(2), NewEvent(stream="free", type="T", data={})]),
        store.append(ev(3, expected_version=7)),  # version conflict
        return_exceptions=True,
    )
    after = store.counters.snapshot()
    assert after.groups - before.groups == 1, "the premise: all four in one group"
    assert isinstance(outcomes[1], EventIdConflict)
    assert isinstance(outcomes[3], VersionConflict)
    first, third = outcomes[0], outcomes[2]
    assert isinstance(first, list)
    assert isinstance(third, list)
    assert [r.duplicate for r in first] == [False, True]
    assert [r.duplicate for r in third] == [True, False]
    assert third[0].seq == first[0].seq
    assert _delta(before, after) == (2, 2, {"event_id_conflict": 1, "version_conflict": 1})
    assert store.last_seq == 3


async def test_a_failing_request_leaves_its_ids_unknown_to_the_rest_of_its_group(
    store: EventStore,
) -> None:
    """A batch refused whole (its last event conflicts) does not make its first event's id
    look stored: a later request of the same group carrying that id appends it, and the
    one after it is the duplicate."""
    before = store.counters.snapshot()
    outcomes = await asyncio.gather(
        store.append_batch([ev(5), ev(6, expected_version=3)]),
        store.append(ev(5)),
        store.append(ev(5)),
        return_exceptions=True,
    )
    after = store.counters.snapshot()
    assert after.groups - before.groups == 1, "the premise: all three in one group"
    assert isinstance(outcomes[0], VersionConflict)
    stored, repeated = outcomes[1], outcomes[2]
    assert not isinstance(stored, BaseException)
    assert not isinstance(repeated, BaseException)
    assert (stored.seq, stored.duplicate) == (1, False)
    assert (repeated.seq, repeated.duplicate) == (1, True)
    assert _delta(before, after) == (1, 1, {"version_conflict": 2})


def _big(i: int) -> NewEvent:
    return NewEvent(
        stream="big", type="T", data={"pad": "x" * 3000, "i": i}, event_id=cid(10_000 + i)
    )


async def test_a_rolled_back_group_leaves_no_id_known_and_nothing_counted_stored(
    data_dir: Path,
) -> None:
    """A group the size cap rolls back counts its events refused, none appended; once
    there is room the same ids are appended as new events, not answered as duplicates."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir, max_db_bytes=600_000)) as store:
        for i in range(10_000):
            try:
                await store.append(_big(i))
            except Unavailable:
                break
        acked = store.last_seq
        before = store.counters.snapshot()
        ids = range(20_000, 20_010)
        outcomes = await asyncio.gather(
            *(store.append_batch([_big(i), _big(i + 100)]) for i in ids),
            return_exceptions=True,
        )
        middle = store.counters.snapshot()
        assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        assert store.last_seq == acked
        assert _delta(before, middle) == (0, 0, {"unavailable": 20})
        await store.set_size_cap(None)
        retried = await store.append_batch([e for i in ids for e in (_big(i), _big(i + 100))])
        assert not any(r.duplicate for r in retried)
        assert [r.seq for r in retried] == list(range(acked + 1, acked + 21))
        assert _delta(middle, store.counters.snapshot()) == (20, 0, {})
    assert verify(data_dir).ok


async def test_a_streamed_append_stores_an_id_repeated_across_chunks_once(
    store: EventStore,
) -> None:
    """An id in the first and the third chunk of a streamed append (and one stored before
    it) is one event; the counters say so."""
    await store.append(ev(40))
    before = store.counters.snapshot()
    result = await store.append_stream([[ev(41), ev(42)], [ev(40)], [ev(41), ev(43)]])
    assert (result.appended, result.duplicates) == (3, 2)
    assert store.last_seq == 4
    assert _delta(before, store.counters.snapshot()) == (3, 2, {})


async def test_a_streamed_append_rolled_back_by_a_late_conflict_leaves_its_ids_unknown(
    store: EventStore,
) -> None:
    """A conflict in a later chunk rolls the whole stream back: nothing is counted stored,
    and its earlier chunks' ids are new events when sent again."""
    before = store.counters.snapshot()
    with pytest.raises(EventIdConflict):
        await store.append_stream([[ev(50), ev(51)], [ev(50, data={"x": 1})]])
    assert store.last_seq == 0
    assert _delta(before, store.counters.snapshot())[:2] == (0, 0)
    results = await store.append_batch([ev(50), ev(51)])
    assert [(r.seq, r.duplicate) for r in results] == [(1, False), (2, False)]
