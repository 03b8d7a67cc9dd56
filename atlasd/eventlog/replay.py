"""Bringing views up to date from the log: catch-up on open, and ``rebuild``.

Both stream the log in chunks of :data:`CHUNK` events (never the whole log in
memory), fold each chunk with :class:`~atlasd.eventlog.projections.Fold` and
commit it together with the views' checkpoints, so a crash mid-way resumes
where it stopped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog.datadir import DataDirLock, db_path
from atlasd.eventlog.projections import (
    PROJECTED_TYPES,
    VIEW_SPECS,
    VIEWS,
    Fold,
    create_view_tables,
    drop_view_tables,
)
from atlasd.eventlog.sql import Statements, connect, migrate, translate_error

__all__ = [
    "CHUNK",
    "KEEP_ROWS",
    "RebuildReport",
    "catch_up",
    "rebuild",
    "reset_views",
    "stale_views",
]

CHUNK = 5_000
# View rows a replay keeps cached across chunks (a build's events sit close together).
KEEP_ROWS = 20_000

Progress = Callable[[int, int], None]


class _DataOnly(msgspec.Struct):
    data: dict[str, Any]
    occurred_at: int | None = None


_decode_data = msgspec.json.Decoder(_DataOnly).decode

_TYPES_SQL = ", ".join(f"'{t}'" for t in sorted(PROJECTED_TYPES))
_CHUNK_SQL = (
    "SELECT seq, event_id, type, recorded_at, body FROM events"
    f" WHERE seq > ? AND seq <= ? AND type IN ({_TYPES_SQL}) ORDER BY seq LIMIT ?"
)


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    projected: int
    seconds: float


def stale_views(conn: sqlite3.Connection) -> dict[str, int]:
    """Reset views whose projector version changed; return ``{view: checkpoint}`` for
    every view behind the log (a reset view starts at 0)."""
    stored = {name: (version, cp) for name, version, cp in conn.execute(Statements.projections)}
    reset = {
        name for name, spec in VIEW_SPECS.items() if stored.get(name, (None, 0))[0] != spec.version
    }
    shared = stored.get("builds", (0, 0))[1] == stored.get("tasks", (0, 0))[1]
    if reset & {"builds", "tasks"} or not shared:
        reset |= {"builds", "tasks"}  # folded together: they share one checkpoint
    if reset:
        reset_views(conn, tuple(name for name in VIEWS if name in reset))
    else:
        create_view_tables(conn)
    last_seq = _last_seq(conn)
    checkpoints = {name: cp for name, _version, cp in conn.execute(Statements.projections)}
    return {name: checkpoints[name] for name in VIEWS if checkpoints[name] < last_seq}


def reset_views(conn: sqlite3.Connection, names: tuple[str, ...], *, indexes: bool = True) -> None:
    """Empty the named views and record their current versions at checkpoint 0."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        drop_view_tables(conn, names)
        create_view_tables(conn, names, indexes=indexes)
        conn.executemany(
            Statements.put_projection, [(name, VIEW_SPECS[name].version, 0) for name in names]
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def catch_up(
    conn: sqlite3.Connection,
    from_seq: dict[str, int],
    progress: Progress | None = None,
    *,
    fresh: bool = False,
) -> int:
    """Fold the log into the views named in ``from_seq`` from their checkpoints on;
    returns how many events were folded. Commits once per chunk. ``fresh``: the
    views are empty (a rebuild), so new keys are not looked up."""
    if not from_seq:
        return 0
    last_seq = _last_seq(conn)
    fold = Fold(conn, dict(from_seq), fresh=fresh, keep_rows=KEEP_ROWS)
    projected = 0
    for events, end in _chunks(conn, min(from_seq.values()), last_seq):
        conn.execute("BEGIN IMMEDIATE")
        try:
            fold.apply_many(events)
            projected += len(events)
            fold.flush(checkpoint=end)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if progress is not None:
            progress(end, last_seq)
    return projected


_Chunk = list[tuple[int, str, str, dict[str, Any], int]]


def _chunks(conn: sqlite3.Connection, start: int, last_seq: int) -> Iterator[tuple[_Chunk, int]]:
    """The projected events after ``start`` as decoded chunks, with the seq each ends at.

    (Reading the next chunk on a second thread was measured: no faster, since
    decoding and folding both need the GIL, and it held two chunks in memory.)
    """
    cursor = start
    while True:
        rows = conn.execute(_CHUNK_SQL, (cursor, last_seq, CHUNK)).fetchall()
        events: _Chunk = []
        for s, e, ty, recorded_at, body in rows:
            stored = _decode_data(body)
            t = recorded_at if stored.occurred_at is None else stored.occurred_at
            events.append((s, e, ty, stored.data, t))
        cursor = rows[-1][0] if len(rows) == CHUNK else last_seq
        yield events, cursor
        if cursor >= last_seq:
            return


def rebuild(data_dir: Path, progress: Progress | None = None) -> RebuildReport:
    """Rebuild every view from the log (daemon stopped: takes the data dir lock).

    Resource handling: views are refilled without their secondary indexes,
    which are built once at the end (faster than keeping them up to date).

    Error handling: :class:`~atlasd.errors.Unavailable` when a daemon holds the
    data dir or there is no database; sqlite3 errors are translated.
    """
    started = time.perf_counter()
    if not db_path(data_dir).exists():
        raise Unavailable(f"no atlasd database at {db_path(data_dir)}")
    with DataDirLock(data_dir):
        # NORMAL: a rebuild that loses its last chunks to a power cut resumes from the
        # checkpoints at the next open, so a sync per chunk buys nothing
        conn = connect(db_path(data_dir), synchronous="NORMAL")
        try:
            migrate(conn)
            reset_views(conn, VIEWS, indexes=False)
            projected = catch_up(conn, dict.fromkeys(VIEWS, 0), progress, fresh=True)
            conn.execute("BEGIN IMMEDIATE")
            create_view_tables(conn)
            conn.execute("COMMIT")
            events = _last_seq(conn)
        except sqlite3.Error as exc:
            raise translate_error(exc) from exc
        finally:
            conn.close()
    return RebuildReport(events=events, projected=projected, seconds=time.perf_counter() - started)


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute(Statements.last_event).fetchone()
    return int(row[0]) if row else 0
