"""Group commit: many concurrent appenders share transactions without losing or mixing anything."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from atlasd.errors import AtlasdError, EventIdConflict, InvalidValue, VersionConflict
from atlasd.eventlog import AppendResult, EventStore, NewEvent, StoreConfig, rebuild, verify


async def test_many_concurrent_appenders_lose_nothing(data_dir: Path) -> None:
    """Every acknowledged event is stored exactly once, seq 1..N without a gap."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:

        async def appender(worker: int) -> list[AppendResult]:
            results = []
            for i in range(40):
                event = NewEvent(stream=f"w{worker % 7}", type="Tick", data={"w": worker, "i": i})
                results.append(await store.append(event))
            return results

        acks = [r for rs in await asyncio.gather(*(appender(w) for w in range(64))) for r in rs]
        events = [e async for e in store.iter_events()]
    assert len(acks) == 64 * 40
    assert sorted(a.seq for a in acks) == list(range(1, len(acks) + 1))
    assert [e.seq for e in events] == list(range(1, len(acks) + 1))
    by_seq = {e.seq: e for e in events}
    for ack in acks:
        assert by_seq[ack.seq].event_id == ack.event_id
        assert by_seq[ack.seq].version == ack.version
    for stream in {e.stream for e in events}:
        versions = [e.version for e in events if e.stream == stream]
        assert versions == list(range(1, len(versions) + 1))
    assert verify(data_dir).ok


async def test_concurrent_appends_share_commits(data_dir: Path) -> None:
    """Appends queued together commit in fewer transactions than there are appends."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        db = sqlite3.connect(data_dir / "atlasd.db")
        before = db.execute("PRAGMA data_version").fetchone()[0]
        await asyncio.gather(
            *(store.append(NewEvent(stream="s", type="T", data={})) for _ in range(200))
        )
        # data_version moves once per commit by another connection
        commits = db.execute("PRAGMA data_version").fetchone()[0] - before
        db.close()
    assert 1 <= commits < 200


async def test_a_failing_request_does_not_fail_its_group(data_dir: Path) -> None:
    """Conflicts and invalid events queued with good ones fail alone; the others commit."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(NewEvent(stream="taken", type="T", data={}))
        good = [NewEvent(stream=f"g{i}", type="T", data={"i": i}) for i in range(20)]
        bad = [
            NewEvent(stream="taken", type="T", data={}, expected_version=0),
            NewEvent(stream="taken", type="T", data={}, event_id=None, expected_version=7),
        ]
        conflicting_id = "0190aaaa-0000-7000-8000-000000000001"
        await store.append(NewEvent(stream="x", type="T", data={"v": 1}, event_id=conflicting_id))
        bad.append(NewEvent(stream="x", type="T", data={"v": 2}, event_id=conflicting_id))
        too_big = NewEvent(stream="big", type="T", data={"blob": "x" * (1 << 20)})
        mixed = good[:10] + bad + [too_big] + good[10:]
        outcomes = await asyncio.gather(*(store.append(e) for e in mixed), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, AtlasdError)]
        results = [o for o in outcomes if isinstance(o, AppendResult)]
        assert [type(e) for e in errors] == [
            VersionConflict, VersionConflict, EventIdConflict, InvalidValue,
        ]  # fmt: skip
        assert len(results) == 20
        assert sorted(r.seq for r in results) == list(range(3, 23))
        stored = [e.data for e in await store.read(from_seq=2)]
    assert sorted(d["i"] for d in stored) == list(range(20))
    assert verify(data_dir).ok


@pytest.mark.parametrize("batch", [1, 7, 250])
async def test_concurrent_batches_stay_contiguous(data_dir: Path, batch: int) -> None:
    """Each batch's events get consecutive seqs even when batches commit together."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        batches = [
            [NewEvent(stream=f"b{b}", type="T", data={"b": b, "i": i}) for i in range(batch)]
            for b in range(12)
        ]
        all_results = await asyncio.gather(*(store.append_batch(b) for b in batches))
        for results in all_results:
            seqs = [r.seq for r in results]
            assert seqs == list(range(seqs[0], seqs[0] + batch))
            assert [r.version for r in results] == list(range(1, batch + 1))
        assert store.last_seq == 12 * batch


async def test_same_new_id_twice_in_one_group_is_stored_once(data_dir: Path) -> None:
    """Two concurrent appends of one new event_id commit it once; other content conflicts."""
    event_id = "0190bbbb-0000-7000-8000-000000000002"
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        same = NewEvent(stream="s", type="T", data={"v": 1}, event_id=event_id)
        other = NewEvent(stream="s", type="T", data={"v": 2}, event_id=event_id)
        first, second, third = await asyncio.gather(
            store.append(same), store.append(same), store.append(other), return_exceptions=True
        )
        assert isinstance(first, AppendResult)
        assert isinstance(second, AppendResult)
        assert (first.seq, first.duplicate) == (1, False)
        assert (second.seq, second.duplicate) == (1, True)
        assert isinstance(third, EventIdConflict)
        assert store.last_seq == 1


async def test_a_refused_batch_leaves_the_views_as_its_group_commits_them(
    data_dir: Path,
) -> None:
    """A batch refused at its last event folds none of its events into the views, while
    the append it shares a group with is folded; the views equal a replay."""
    build = {"build_id": "b1", "prd_id": "p", "prd_name": "n"}
    task = {"build_id": "b1", "task_id": "t1", "title": "x", "agent": "a", "status": "pending"}
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        refused, accepted = await asyncio.gather(
            store.append_batch(
                [
                    NewEvent(stream="build:b1", type="BuildStarted", data=build),
                    NewEvent(stream="build:b1", type="TaskLogged", data=task),
                    NewEvent(stream="build:b1", type="T", data={}, expected_version=9),
                ]
            ),
            store.append(NewEvent(stream="build:b2", type="BuildStarted", data={"build_id": "b2"})),
            return_exceptions=True,
        )
        assert isinstance(refused, VersionConflict)
        assert isinstance(accepted, AppendResult)
        assert accepted.seq == 1
        assert [row["build_id"] for row in await store.query("builds")] == ["b2"]
        assert await store.query("tasks") == []
        inline = {view: await store.query(view) for view in ("builds", "tasks")}
    rebuild(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert {view: await store.query(view) for view in ("builds", "tasks")} == inline


async def test_one_group_answers_each_client_id_and_counts_each_outcome(data_dir: Path) -> None:
    """In one group: ids stored by earlier groups are duplicates (or conflicts), an id
    repeated within the group resolves to its first append, and the counters add up."""
    ids = [f"0000000{i}-0000-4000-8000-000000000000" for i in range(6)]

    def ev(i: int, data: int = 0) -> NewEvent:
        return NewEvent(event_id=ids[i], stream=f"s{i}", type="T", data={"d": data})

    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        stored = await store.append_batch([ev(0), ev(1)])
        before = store.counters.snapshot()
        answers = await asyncio.gather(
            store.append(ev(0)),  # stored by an earlier group: a duplicate
            store.append(ev(1, data=9)),  # stored, other data: a conflict, alone
            store.append(ev(2)),
            store.append(ev(2)),  # repeated within the group
            store.append_batch([ev(3), ev(4), ev(3)]),
            store.append(ev(5, data=1)),
            store.append(ev(5, data=2)),  # repeated within the group, other data
            return_exceptions=True,
        )
        after = store.counters.snapshot()
        assert store.counters.groups - before.groups == 1
    first, conflict, new, again, batch, fifth, fifth_conflict = answers
    assert isinstance(first, AppendResult)
    assert (first.seq, first.duplicate) == (stored[0].seq, True)
    assert isinstance(conflict, EventIdConflict)
    assert isinstance(new, AppendResult)
    assert isinstance(again, AppendResult)
    assert (again.seq, again.duplicate, new.duplicate) == (new.seq, True, False)
    assert isinstance(batch, list)
    assert [r.duplicate for r in batch] == [False, False, True]
    assert batch[2].seq == batch[0].seq
    assert isinstance(fifth, AppendResult)
    assert not fifth.duplicate
    assert isinstance(fifth_conflict, EventIdConflict)
    assert after.appended - before.appended == 4  # ids 2, 3, 4, 5
    assert after.duplicates - before.duplicates == 3  # id 0, id 2 again, id 3 again
    assert after.refused.get("event_id_conflict", 0) == 2
    assert verify(data_dir).ok


async def test_an_answered_batch_is_in_the_position_counters_and_change_signal(
    data_dir: Path,
) -> None:
    """When ``append_batch`` returns, ``last_seq``, the counters and a waiter on the
    change signal already show its events, and a reader finds them."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        waiter = asyncio.ensure_future(store.wait_for_append(0, timeout=10))
        await asyncio.sleep(0)
        events = [NewEvent(stream="s", type="T", data={"i": i}) for i in range(100)]
        results = await store.append_batch(events)
        assert store.last_seq == results[-1].seq == 100
        assert store.counters.appended == 100
        assert store.counters.groups == 1
        assert await waiter == 100
        assert [e.seq for e in await store.read(from_seq=98)] == [99, 100]
