"""Views kept at append time equal a full replay, also when requests and groups fail.

A seeded random mix of events, with requests refused inside their group (a
stale ``expected_version``, an event id reused with other data), whole groups
rolled back by the size cap before their views were folded, or by a failure
at their last statement after the fold (a trigger standing in for a disk
error), and a compaction
moving the log's start to segments half-way, must leave every view as
``rebuild`` makes it from the log alone.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from atlasd.errors import AtlasdError, EventIdConflict, Unavailable, VersionConflict
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild, verify
from atlasd.eventlog.autocompact import Compactor
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.retention import CompactionRule
from tests.eventlog.test_replay_property import random_batches
from tests.eventlog.vectors import all_rows

REUSED_ID = "00000000-0000-4000-8000-00000000abcd"
EVERYTHING = CompactionRule(older_than_ms=0, synced_only=False, segment_events=40)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(20, 80), st.integers(1, 4))
def test_views_equal_a_replay_after_refused_requests_and_rolled_back_groups(
    seed: int, count: int, group: int
) -> None:
    """Conflicts refused inside groups, groups rolled back before and after their fold and
    a compaction leave the views as a rebuild makes them."""
    data_dir = Path(tempfile.mkdtemp(dir="/tmp")) / "data"
    try:
        refusals = asyncio.run(_check(data_dir, random_batches(seed, count), seed, group))
    finally:
        shutil.rmtree(data_dir.parent)
    # every kind of failure happened: the test exercised what it names
    assert refusals[Unavailable] >= 1
    assert refusals[AtlasdError] >= 1
    assert refusals[VersionConflict] + refusals[EventIdConflict] >= 1


async def _check(
    data_dir: Path, batches: list[tuple[str, dict[str, Any], int]], seed: int, group: int
) -> dict[type, int]:
    rng = random.Random(seed)
    refusals: dict[type, int] = {
        Unavailable: 0,
        VersionConflict: 0,
        EventIdConflict: 0,
        AtlasdError: 0,  # a group failed after its fold
    }
    half = len(batches) // 2
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(
            NewEvent(stream="reused", type="Reused", data={"n": 0}, event_id=REUSED_ID)
        )
        pending = []
        for t, (event_type, data, copies) in enumerate(batches, 1):
            stream = f"s:{data.get('build_id')}"
            batch = [NewEvent(stream=stream, type=event_type, data=data)] * copies
            roll = rng.random()
            if roll < 0.15:  # a stale version: this request alone is refused
                batch.append(
                    NewEvent(stream=stream, type=event_type, data=data, expected_version=10**6)
                )
            elif roll < 0.3:  # an id stored already with other data: refused alone
                batch.append(
                    NewEvent(stream="reused", type="Reused", data={"n": t}, event_id=REUSED_ID)
                )
            pending.append(store.append_batch(batch, recorded_at=t, check_schema=False))
            if t % group == 0 or t == len(batches):  # `group` batches share a group commit
                _count(await asyncio.gather(*pending, return_exceptions=True), refusals)
                pending = []
            if roll > 0.85 or t == half:
                _count([await _at_the_cap(store, batches[rng.randrange(len(batches))])], refusals)
            after_fold = 0.7 < roll <= 0.85 or t == half + 1
            if after_fold and await _failing_after_fold(
                data_dir, store, batches[rng.randrange(len(batches))]
            ):
                refusals[AtlasdError] += 1
            if t == half:
                await Compactor(store, EVERYTHING, move_chunk=7).run()
        inline = await all_rows(store)
    report = verify(data_dir)
    assert report.ok, report.findings
    rebuild(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert await all_rows(store) == inline
    return refusals


async def _at_the_cap(
    store: EventStore, batch: tuple[str, dict[str, Any], int]
) -> BaseException | None:
    """A group of the given events, large enough to need new pages, under a cap at the
    database's size: rolled back whole; then the cap is lifted."""
    event_type, data, _ = batch
    stream = f"s:{data.get('build_id')}"
    big = [
        NewEvent(stream=stream, type=event_type, data={**data, "padding": "x" * 2000})
        for _ in range(200)
    ]
    await store.set_size_cap(1)  # never below the pages in use: no room to grow
    try:
        await store.append_batch(big, check_schema=False)
    except Unavailable as exc:
        return exc
    finally:
        await store.set_size_cap(None)
    return None


async def _failing_after_fold(
    data_dir: Path, store: EventStore, batch: tuple[str, dict[str, Any], int]
) -> bool:
    """A group of the given events whose views' checkpoint cannot be written: it fails
    after the fold ran, and rolls back whole. Returns whether it failed."""
    event_type, data, copies = batch
    events = [NewEvent(stream=f"s:{data.get('build_id')}", type=event_type, data=data)] * copies
    db = sqlite3.connect(db_path(data_dir))
    try:
        with db:
            db.execute(
                "CREATE TRIGGER fail_checkpoint BEFORE UPDATE ON projections"
                " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        try:
            await store.append_batch(events, check_schema=False)
        except AtlasdError:
            return True
        finally:
            with db:
                db.execute("DROP TRIGGER fail_checkpoint")
    finally:
        db.close()
    return False


def _count(outcomes: list[Any], refusals: dict[type, int]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            if type(outcome) not in refusals:
                raise outcome
            refusals[type(outcome)] += 1
