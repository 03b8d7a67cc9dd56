"""Client ids looked up in chunks: retries, duplicates and conflicts at and across the
chunks' edges, in a group, in another case and in archives; a batch stays all or nothing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from atlasd.errors import EventIdConflict
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify
from atlasd.eventlog.compact import compact
from atlasd.eventlog.sql import IDS_PER_LOOKUP


def cid(i: int) -> str:
    """A valid UUIDv7 client id, distinct per ``i``."""
    return str(uuid.UUID(int=(0x0190F00D << 96) | (7 << 76) | (2 << 62) | (i + 1)))


def ev(i: int, *, event_id: str | None = None, data: dict[str, int] | None = None) -> NewEvent:
    return NewEvent(
        stream=f"s{i % 5}",
        type="T",
        data={"i": i} if data is None else data,
        event_id=cid(i) if event_id is None else event_id,
    )


@pytest.mark.parametrize("count", [1, 255, 256, 257, 512, 513, 769])
async def test_a_retried_batch_of_any_size_answers_each_stored_id(
    store: EventStore, count: int
) -> None:
    """Every third id stored first; the whole batch retried then appends the others and
    answers each stored one with its first position, whatever the chunk edges."""
    first = await store.append_batch([ev(i) for i in range(count) if i % 3 == 0])
    where = {r.event_id: r for r in first}
    results = await store.append_batch([ev(i) for i in range(count)])
    assert [r.event_id for r in results] == [cid(i) for i in range(count)]
    for i, result in enumerate(results):
        assert result.duplicate == (i % 3 == 0), i
        if result.duplicate:
            assert (result.seq, result.version) == (where[cid(i)].seq, where[cid(i)].version)
    assert store.last_seq == count
    again = await store.append_batch([ev(i) for i in range(count)])
    assert all(r.duplicate for r in again)
    assert store.last_seq == count


async def test_an_id_repeated_across_lookup_chunks_is_one_event(store: EventStore) -> None:
    """An id appearing at index 0, at the first chunk's end and in the third chunk of
    one batch is appended once; its later copies answer with its position."""
    n = IDS_PER_LOOKUP * 2 + 10
    events = [ev(i) for i in range(n)]
    for at in (IDS_PER_LOOKUP - 1, IDS_PER_LOOKUP, n - 1):
        events[at] = ev(0)
    results = await store.append_batch(events)
    firsts = [r for r in results if r.event_id == cid(0)]
    assert len(firsts) == 4
    assert [r.duplicate for r in firsts] == [False, True, True, True]
    assert len({(r.seq, r.version) for r in firsts}) == 1
    assert store.last_seq == n - 3


async def test_a_conflict_in_the_last_lookup_chunk_fails_the_whole_batch(
    store: EventStore, data_dir: Path
) -> None:
    """A stored id with other data at the batch's very end (past two full chunks) fails
    the batch, and nothing of it is written: not its new events, not its views."""
    await store.append_batch([ev(i) for i in range(0, 600, 7)])
    before = store.last_seq
    batch = [ev(i) for i in range(IDS_PER_LOOKUP * 2 + 1)]
    batch[-1] = ev(595, data={"i": -1})  # stored with {"i": 595}
    with pytest.raises(EventIdConflict, match=cid(595)):
        await store.append_batch(batch)
    assert store.last_seq == before
    with pytest.raises(EventIdConflict):
        await store.append_batch([ev(10_000), ev(0, data={"other": 1})])
    assert store.last_seq == before
    assert (await store.append(ev(700))).seq == before + 1


async def test_a_retry_in_upper_case_is_the_stored_event(store: EventStore) -> None:
    """The same id in upper case, alone and among 300 others, is a duplicate of the
    stored event, not a new one."""
    stored = await store.append(ev(1))
    upper = await store.append(ev(1, event_id=cid(1).upper()))
    assert upper.duplicate
    assert upper.seq == stored.seq
    batch = [ev(i + 1000) for i in range(300)]
    batch[299] = ev(1, event_id=cid(1).upper())
    results = await store.append_batch(batch)
    assert results[299].duplicate
    assert results[299].seq == stored.seq
    assert store.last_seq == 1 + 299


async def test_requests_of_one_group_sharing_an_id_append_it_once(store: EventStore) -> None:
    """Concurrent batches carrying one id (same content) append it once; one carrying it
    with other content is refused whole, the others land."""
    shared = ev(5)
    batches = [[ev(1000 * b + i) for i in range(300)] + [shared] for b in range(1, 4)]
    bad = [ev(9000 + i) for i in range(300)] + [ev(5, data={"i": 6})]
    outcomes = await asyncio.gather(
        *(store.append_batch(b) for b in [*batches, bad]), return_exceptions=True
    )
    assert isinstance(outcomes[3], EventIdConflict)
    ok = [o for o in outcomes[:3] if isinstance(o, list)]
    assert len(ok) == 3
    lasts = [o[-1] for o in ok]
    assert sum(not r.duplicate for r in lasts) == 1
    assert len({r.seq for r in lasts}) == 1
    assert store.last_seq == 3 * 300 + 1


async def test_ids_moved_to_archives_are_still_found(data_dir: Path) -> None:
    """After compaction moved the stored events out of the table, a retried batch larger
    than one lookup chunk answers each archived id with its position, and a changed copy
    is a conflict."""
    config = StoreConfig(data_dir=data_dir)
    async with await EventStore.open(config) as store:
        first = await store.append_batch([ev(i) for i in range(0, 400, 2)])
    compact(data_dir, older_than_ms=0, synced_only=False, segment_events=64)
    async with await EventStore.open(config) as store:
        results = await store.append_batch([ev(i) for i in range(400)])
        assert [r.duplicate for r in results] == [i % 2 == 0 for i in range(400)]
        assert [r.seq for r in results[::2]] == [r.seq for r in first]
        with pytest.raises(EventIdConflict):
            await store.append_batch([ev(1000 + i) for i in range(300)] + [ev(2, data={})])
        assert store.last_seq == 400
    report = verify(data_dir)
    assert report.ok, report.findings
