"""A full disk or the size cap refuses appends cleanly; reads go on; appends resume later."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify


def big(i: int) -> NewEvent:
    return NewEvent(
        stream="build:b1",
        type="TaskLogged",
        data={"build_id": "b1", "task_id": f"t{i}", "status": "pending", "pad": "x" * 3000},
    )


async def _fill(store: EventStore) -> int:
    """Append until the cap refuses; returns how many were acknowledged."""
    for i in range(10_000):
        try:
            await store.append(big(i))
        except Unavailable as error:
            refusal = error.message
            break
    else:
        raise AssertionError("the size cap never refused an append")
    assert "size cap of" in refusal
    return i


async def test_size_cap_refuses_appends_and_keeps_reads(data_dir: Path) -> None:
    """At the cap appends get unavailable, nothing half-written, reads and views still work."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir, max_db_bytes=600_000)) as store:
        acked = await _fill(store)
        assert acked > 10
        assert store.last_seq == acked
        with pytest.raises(Unavailable, match="size cap of 600000 bytes"):
            await store.append_batch([big(-1), big(-2)])
        assert store.last_seq == acked
        assert len(await store.read(limit=10_000)) == acked
        assert len(await store.query("tasks", limit=10_000)) == acked
        assert (await store.query("builds"))[0]["tasks_total"] == acked
    report = verify(data_dir)
    assert report.ok, report.findings


async def test_appends_resume_once_there_is_room(data_dir: Path) -> None:
    """Raising the cap (space back) lets the very next append succeed, gap-free."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir, max_db_bytes=500_000)) as store:
        acked = await _fill(store)
        await store.set_size_cap(None)
        result = await store.append(big(10_000))
        assert result.seq == acked + 1
        assert [e.seq for e in await store.read(from_seq=acked - 1)] == [acked, acked + 1]
    assert verify(data_dir).ok


async def test_cap_is_enforced_again_after_reopen(data_dir: Path) -> None:
    """The cap comes from the config on every open (SQLite does not persist it)."""
    config = StoreConfig(data_dir=data_dir, max_db_bytes=700_000)
    async with await EventStore.open(config) as store:
        acked = await _fill(store)
    async with await EventStore.open(config) as store:
        with pytest.raises(Unavailable):
            await store.append(big(0))
        assert store.last_seq == acked


async def test_the_cap_is_named_when_a_large_event_meets_it(data_dir: Path) -> None:
    """An event of hundreds of KiB that would cross the cap is refused naming the cap,
    not a full disk, although the database stops short of the cap by more than a page."""
    cap = 2_000_000
    large = NewEvent(stream="s", type="note.added", data={"p": "x" * 300_000})
    async with await EventStore.open(StoreConfig(data_dir=data_dir, max_db_bytes=cap)) as store:
        refusal = None
        while refusal is None and store.last_seq < 100:
            try:
                await store.append(large)
            except Unavailable as error:
                refusal = error.message
        assert store.last_seq < 100
    assert refusal is not None
    assert f"size cap of {cap} bytes" in refusal
