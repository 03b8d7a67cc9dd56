"""The database itself refuses to change or delete a stored event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, NewEvent, StoreConfig


async def _one_event(data_dir: Path) -> None:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(NewEvent(stream="s", type="T", data={"n": 1}))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'Forged' WHERE seq = 1",
        "UPDATE events SET payload = x'00'",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
        "INSERT OR REPLACE INTO events SELECT * FROM events",
    ],
)
async def test_raw_update_or_delete_of_an_event_fails(data_dir: Path, statement: str) -> None:
    """A raw UPDATE or DELETE on events is aborted by a trigger and changes nothing."""
    await _one_event(data_dir)
    db = sqlite3.connect(data_dir / "atlasd.db")
    try:
        if statement.startswith("INSERT OR REPLACE"):
            # REPLACE deletes the old row first; with recursive triggers on, that fires too
            db.execute("PRAGMA recursive_triggers = ON")
        with pytest.raises(sqlite3.DatabaseError, match="immutable"):
            db.execute(statement)
        rows = db.execute("SELECT seq, type FROM events").fetchall()
    finally:
        db.close()
    assert rows == [(1, "T")]
