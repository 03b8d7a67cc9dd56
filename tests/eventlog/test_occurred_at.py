"""occurred_at: when a thing happened, kept, hashed, range-checked, and what views use."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from atlasd.errors import InvalidValue
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild, verify
from atlasd.eventlog.chain import GENESIS_HASH, content_hash
from atlasd.eventlog.projections.schema import VIEW_SPECS
from atlasd.eventlog.rows import stored_row
from atlasd.eventlog.sql import Statements
from atlasd.events import Event


def started(build_id: str, occurred_at: int | None = None) -> NewEvent:
    return NewEvent(
        stream=f"build:{build_id}",
        type="BuildStarted",
        data={"build_id": build_id, "prd_id": "p", "prd_name": "n"},
        occurred_at=occurred_at,
    )


async def test_occurred_at_is_stored_as_given_beside_recorded_at(store: EventStore) -> None:
    """An event appended with occurred_at keeps it; recorded_at is still the log's clock."""
    await store.append(started("b1", occurred_at=1_000), recorded_at=5_000)
    [event] = await store.read()
    assert (event.occurred_at, event.recorded_at) == (1_000, 5_000)


async def test_absent_occurred_at_equals_recorded_at(store: EventStore) -> None:
    """Without occurred_at the stored event carries its recorded_at as occurred_at."""
    await store.append(started("b1"), recorded_at=7_000)
    [event] = await store.read()
    assert event.occurred_at == event.recorded_at == 7_000


@pytest.mark.parametrize("bad", [-1, 2**53, 2**64, True, 1.5, "1000"])
async def test_occurred_at_out_of_range_or_not_an_integer_is_refused(
    store: EventStore, bad: object
) -> None:
    """occurred_at must be an integer in 0..2**53-1; anything else appends nothing."""
    with pytest.raises(InvalidValue, match="occurred_at"):
        await store.append(started("b1", occurred_at=bad))  # type: ignore[arg-type]
    assert store.last_seq == 0


async def test_views_take_occurred_at_not_recorded_at(store: EventStore) -> None:
    """A build's started_at is when it started, not when the log heard of it."""
    await store.append(started("b1", occurred_at=1_000), recorded_at=9_000)
    [row] = await store.query("builds")
    assert row["started_at"] == 1_000


async def test_occurred_at_is_covered_by_the_hash(data_dir: Path) -> None:
    """Changing a stored event's occurred_at is found by verify as a hash mismatch."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(started("b1", occurred_at=1_000))
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute("DROP TRIGGER events_refuse_update")
    db.execute(
        "UPDATE events SET payload ="
        " replace(payload, '\"occurred_at\":1000', '\"occurred_at\":2000')"
    )
    db.commit()
    db.close()
    report = verify(data_dir)
    assert not report.ok
    assert [f for f in report.findings if "seq 1: hash does not match" in f], report.findings


async def test_an_event_from_before_occurred_at_verifies_and_projects_at_recorded_at(
    data_dir: Path,
) -> None:
    """A log written before occurred_at existed still verifies, and its views use recorded_at."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        origin = store.origin
    old = Event(
        seq=1,
        event_id="01900000-0000-7000-8000-000000000001",
        stream="build:b1",
        version=1,
        type="BuildStarted",
        data={"build_id": "b1", "prd_id": "p", "prd_name": "n"},
        meta={},
        recorded_at=4_000,
        origin=origin,
        hash="",
    )
    old = msgspec.structs.replace(old, hash=content_hash(GENESIS_HASH, old))
    body = msgspec.json.encode(old)
    assert b"occurred_at" not in body
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute(
        Statements.insert_event,
        stored_row(1, old.event_id, old.stream, 1, old.type, old.recorded_at, old.hash, body),
    )
    db.commit()
    db.close()
    rebuild(data_dir)
    report = verify(data_dir)
    assert report.ok, report.findings
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        [row] = await store.query("builds")
        [event] = await store.read()
    assert row["started_at"] == 4_000
    assert event.occurred_at is None
    assert event.when == 4_000


def test_every_view_was_bumped_so_existing_logs_rebuild_with_occurred_at() -> None:
    """Each view's projector version is past 1, so a log projected by recorded_at rebuilds."""
    assert all(spec.version >= 2 for spec in VIEW_SPECS.values())
