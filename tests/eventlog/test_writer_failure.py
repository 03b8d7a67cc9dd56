"""A bug that kills the writer task fails the waiting appends instead of hanging them."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from atlasd.errors import Internal, Unavailable
from atlasd.eventlog import EventStore, NewEvent, StoreConfig
from atlasd.eventlog.counters import AppendCounters


class _BrokenQueue(deque[Any]):
    """A queue whose first take raises, as a bug in the write loop would."""

    def popleft(self) -> Any:
        raise RuntimeError("write loop bug")


def _event(n: int) -> NewEvent:
    return NewEvent(stream="build:b-1", type="BuildStarted", data={"build_id": "b-1", "n": n})


async def test_appends_waiting_on_a_dead_writer_get_an_internal_error(data_dir: Path) -> None:
    """Queued appends are answered with ``internal``, later ones refused with ``unavailable``."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    store._pending = _BrokenQueue()
    waiting = asyncio.ensure_future(store.append(_event(1)))
    with pytest.raises(Internal, match="writer failed"):
        await asyncio.wait_for(waiting, timeout=10)
    with pytest.raises(Unavailable):
        await store.append(_event(2))
    with pytest.raises(RuntimeError, match="write loop bug"):
        await store.close()


async def test_nothing_is_appended_by_a_writer_that_died(data_dir: Path) -> None:
    """The failed append left no trace: reopening the data dir shows an empty log."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    store._pending = _BrokenQueue()
    with pytest.raises(Internal):
        await asyncio.wait_for(store.append(_event(1)), timeout=10)
    with pytest.raises(RuntimeError):
        await store.close()
    reopened = await EventStore.open(StoreConfig(data_dir=data_dir))
    try:
        assert reopened.last_seq == 0
        assert await reopened.read() == []
    finally:
        await reopened.close()


async def test_a_group_whose_commit_raises_answers_each_appender_and_the_store_goes_on(
    data_dir: Path,
) -> None:
    """A bug in one group commit fails that group's appends with ``internal``, counts
    them as refused, and the next append commits."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        writer = store._writer
        commit_group = writer.commit_group

        def broken_once(requests: Any) -> Any:
            writer.commit_group = commit_group  # type: ignore[method-assign]
            raise RuntimeError("commit bug")

        writer.commit_group = broken_once  # type: ignore[method-assign]
        outcomes = await asyncio.gather(
            store.append(_event(1)),
            store.append_batch([_event(2), _event(3)]),
            return_exceptions=True,
        )
        assert all(isinstance(o, Internal) and "commit bug" in o.message for o in outcomes)
        assert store.counters.refused == {"internal": 3}
        assert store.counters.groups == 0
        assert store.last_seq == 0
        result = await store.append(_event(4))
        assert result.seq == 1
        assert store.last_seq == 1
        assert [e.data["n"] for e in await store.read()] == [4]


async def test_a_bug_while_answering_a_group_ends_the_writer_instead_of_hanging_it(
    data_dir: Path,
) -> None:
    """A bug on the loop after the commit (here in the counters) still answers the
    group, ends the writer task with that error, and later appends are refused rather
    than left waiting."""
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    store.counters = _BrokenCounters()
    try:
        first = await asyncio.wait_for(store.append(_event(1)), timeout=10)
        assert first.seq == 1
        with pytest.raises((Internal, Unavailable)):
            await asyncio.wait_for(store.append(_event(2)), timeout=10)
    finally:
        with pytest.raises(RuntimeError, match="counting bug"):
            await asyncio.wait_for(store.close(), timeout=10)


class _BrokenCounters(AppendCounters):
    __slots__ = ()

    def record_appends(self, appended: int, duplicates: int) -> None:
        raise RuntimeError("counting bug")
