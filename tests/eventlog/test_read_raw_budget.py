"""read_raw's byte budget: bounded read-ahead for the sync worker."""

from __future__ import annotations

import pytest

from atlasd.errors import BadRequest
from atlasd.eventlog import EventStore, NewEvent


def sized(n: int) -> NewEvent:
    return NewEvent(stream="s", type="T", data={"pad": "x" * n})


async def test_budget_stops_before_the_event_that_would_exceed_it(store: EventStore) -> None:
    """Events are returned while their bodies' total fits max_bytes, in seq order."""
    await store.append_batch([sized(100) for _ in range(10)])
    everything = await store.read_raw(0, 100)
    sizes = [len(body) for _, body in everything]
    budget = sum(sizes[:3]) + sizes[3] - 1  # room for three and most of a fourth
    rows = await store.read_raw(0, 100, max_bytes=budget)
    assert rows == everything[:3]
    assert sum(len(body) for _, body in rows) <= budget


async def test_exact_budget_includes_the_last_fitting_event(store: EventStore) -> None:
    """A budget equal to the sum of k bodies returns exactly those k events."""
    await store.append_batch([sized(50 + i) for i in range(6)])
    everything = await store.read_raw(0, 100)
    budget = sum(len(body) for _, body in everything[:4])
    assert await store.read_raw(0, 100, max_bytes=budget) == everything[:4]


async def test_one_event_larger_than_the_budget_is_still_returned(store: EventStore) -> None:
    """At least one event comes back, so a reader always makes progress."""
    await store.append_batch([sized(5000), sized(10)])
    rows = await store.read_raw(0, 100, max_bytes=10)
    assert [seq for seq, _ in rows] == [1]
    assert await store.read_raw(1, 100, max_bytes=0) == (await store.read_raw(1, 1))


async def test_limit_still_applies_under_a_large_budget(store: EventStore) -> None:
    """max_bytes never returns more than limit events, nor events at or before from_seq."""
    await store.append_batch([sized(10) for _ in range(8)])
    rows = await store.read_raw(2, 3, max_bytes=10**9)
    assert [seq for seq, _ in rows] == [3, 4, 5]
    assert await store.read_raw(8, 10, max_bytes=10**9) == []


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True])
async def test_malformed_budget_is_refused(store: EventStore, bad: object) -> None:
    """A max_bytes that is not a non-negative integer is bad_request."""
    await store.append(sized(1))
    with pytest.raises(BadRequest, match="max_bytes"):
        await store.read_raw(0, 10, max_bytes=bad)  # type: ignore[arg-type]
