"""Origin lineage: a log that continues under a new origin, and the origins it had.

The remote knows a log by its origin and each event's place in it by seq. Two
logs that share an origin and diverge (a backup restored after more events
were synced, or a data dir copied by hand and run twice) would claim the same
(origin, seq) for different events, and the remote refuses the second with
``seq_conflict`` forever. Re-origining ends that: the log keeps every event as
it is (events are immutable, so old events keep the origin they were written
under), takes a new origin for what follows, records the old one in
``meta.origin_lineage`` with the last seq written under it, and rewinds the
sync cursor to 0 so that the remote learns the whole log under the new origin.
The remote stores each event once by ``event_id``: the events it already has
count as duplicates, the rest are new, so it ends up holding every event
exactly once, and the new origin's high water covers the whole log.

All functions take an open connection; :func:`reorigin` commits its own
transaction.
"""

from __future__ import annotations

import sqlite3
import time
import uuid

import msgspec

from atlasd.eventlog.sql import Statements, transaction
from atlasd.reports import LineageEntry

__all__ = ["LineageEntry", "origin_for_seq", "read_lineage", "reorigin"]

#: The meta key holding the JSON list of earlier origins.
LINEAGE_KEY = "origin_lineage"


_decode = msgspec.json.Decoder(list[LineageEntry]).decode
_encode = msgspec.json.encode


def read_lineage(conn: sqlite3.Connection) -> list[LineageEntry]:
    """The earlier origins, oldest first (empty for a log that never changed origin)."""
    row = conn.execute(Statements.get_meta, (LINEAGE_KEY,)).fetchone()
    return [] if row is None else _decode(str(row[0]))


def origin_for_seq(lineage: list[LineageEntry], current: str, seq: int) -> str:
    """The origin the event at ``seq`` was written under."""
    for entry in lineage:
        if seq <= entry.until_seq:
            return entry.origin
    return current


def reorigin(conn: sqlite3.Connection, reason: str) -> tuple[str, str, int]:
    """Continue the log under a new origin; returns (old origin, new origin, last seq).

    In one transaction: the old origin joins the lineage with the last seq,
    the new one becomes ``meta.origin``, the sync cursor goes back to 0 and
    quarantined ``seq_conflict`` refusals are dropped (they were about the
    old origin's positions, which the new origin does not share).
    """
    with transaction(conn):
        old = str(conn.execute(Statements.get_meta, ("origin",)).fetchone()[0])
        last = conn.execute(Statements.log_end).fetchone()
        last_seq = int(last[0]) if last is not None else 0
        lineage = read_lineage(conn)
        lineage.append(
            LineageEntry(
                origin=old, until_seq=last_seq, ended_at=time.time_ns() // 1_000_000, reason=reason
            )
        )
        new = str(uuid.uuid4())
        conn.execute(Statements.set_meta, ("origin", new))
        conn.execute(Statements.set_meta, (LINEAGE_KEY, _encode(lineage).decode()))
        conn.execute(Statements.rewind_cursor)
        conn.execute(Statements.quarantine_drop_code, ("seq_conflict",))
    return old, new, last_seq
