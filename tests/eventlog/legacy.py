"""Data dirs as atlasd wrote them before schema 3, made from one the current code wrote.

Schema 2 kept each event's id and hash as text and its whole stored JSON in
``body``; :func:`write_schema_2` turns a current database back into exactly
that (the DDL below is schema 2's), so that migrations can be tested on real
files of every event kind the current code writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from atlasd.eventlog.rows import body_of, event_id_text
from atlasd.eventlog.sql import DELETE_TRIGGER_SQL

__all__ = ["SCHEMA_2_EVENTS", "write_schema_2"]

SCHEMA_2_EVENTS = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    hash TEXT NOT NULL,
    -- the whole event as msgspec encodes Event: served by read_raw as is
    body BLOB NOT NULL,
    UNIQUE (stream, version)
)
"""
_SCHEMA_2_UPDATE_TRIGGER = """
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END
"""


def write_schema_2(db: Path) -> None:
    """Rewrite the events table of the (closed) database ``db`` in schema 2's layout."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT seq, event_id, stream, version, type, recorded_at, hash, payload"
            " FROM events ORDER BY seq"
        ).fetchall()
        conn.execute("DROP TABLE events")
        conn.execute(SCHEMA_2_EVENTS)
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (s, event_id_text(i), st, v, ty, at, h.hex(), body_of(s, i, st, v, ty, h, p))
                for s, i, st, v, ty, at, h, p in rows
            ],
        )
        conn.execute(_SCHEMA_2_UPDATE_TRIGGER)
        conn.execute(DELETE_TRIGGER_SQL)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("COMMIT")
    finally:
        conn.close()
