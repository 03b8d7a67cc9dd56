"""Bringing views up to date from the log: catch-up on open, and ``rebuild``.

Both stream the log in chunks of :data:`CHUNK` events (never the whole log in
memory), fold each chunk with :class:`~atlasd.packs.engine.Fold` and commit
it together with the views' checkpoints, so a crash mid-way resumes where it
stopped. The views are those of the loaded packs; a view whose definition
changed is rebuilt alone (with the other views of its pack), and the tables of
views no pack defines any more are dropped.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog.archive import ArchiveSet, read_records
from atlasd.eventlog.datadir import DataDirLock, db_path
from atlasd.eventlog.rows import event_id_text
from atlasd.eventlog.sql import Statements, connect, migrate, transaction, translated
from atlasd.packs.engine import Fold
from atlasd.packs.registry import PackSet, builtin_packs, load_packs
from atlasd.packs.tables import create_view_tables, drop_unknown_view_tables, drop_view_tables

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


class _Archived(msgspec.Struct):
    event_id: str
    type: str
    data: dict[str, Any]
    recorded_at: int
    occurred_at: int | None = None


_decode_archived = msgspec.json.Decoder(_Archived).decode


def _archives_of(conn: sqlite3.Connection) -> ArchiveSet:
    """The archive segments of the database ``conn`` has open (beside its file)."""
    file = str(conn.execute("PRAGMA database_list").fetchone()[2])
    return ArchiveSet(Path(file).parent, read_records(conn))


def _chunk_sql(packs: PackSet, reads_id: frozenset[str] | None = None) -> str:
    """The chunk query of ``packs``' event types, naming the event ids of the types in
    ``reads_id`` (None: of every type)."""
    id_types = packs.event_types if reads_id is None else reads_id
    return Statements.projected_chunk.format(
        types=_quoted(packs.event_types), id_types=_quoted(id_types)
    )


def _quoted(types: frozenset[str] | set[str]) -> str:
    return ", ".join("'" + t.replace("'", "''") + "'" for t in sorted(types))


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    projected: int
    seconds: float


def stale_views(conn: sqlite3.Connection, packs: PackSet | None = None) -> dict[str, int]:
    """Reset the views whose definition changed (all views of a pack together) and drop
    those no pack defines; return ``{view: checkpoint}`` for every view behind the log
    (a reset view starts at 0)."""
    packs = packs or builtin_packs()
    stored = {name: (version, cp) for name, version, cp in conn.execute(Statements.projections)}
    reset: set[str] = set()
    for pack in packs.packs:
        names = tuple(pack.views)
        states = [stored.get(name) for name in names]
        changed = any(
            state is None or state[0] != packs.view_version(name)
            for name, state in zip(names, states, strict=True)
        )
        # folded together: a pack's views share one checkpoint
        if changed or len({state[1] for state in states if state is not None}) > 1:
            reset.update(names)
    with transaction(conn):
        drop_unknown_view_tables(conn, packs)
    if reset:
        reset_views(conn, tuple(name for name in packs.view_names if name in reset), packs=packs)
    create_view_tables(conn, packs, packs.view_names)
    last_seq = _last_seq(conn)
    checkpoints = {name: cp for name, _version, cp in conn.execute(Statements.projections)}
    return {name: checkpoints[name] for name in packs.view_names if checkpoints[name] < last_seq}


def reset_views(
    conn: sqlite3.Connection,
    names: tuple[str, ...],
    *,
    indexes: bool = True,
    packs: PackSet | None = None,
) -> None:
    """Empty the named views and record their current versions at checkpoint 0."""
    packs = packs or builtin_packs()
    with transaction(conn):
        drop_view_tables(conn, names)
        create_view_tables(conn, packs, names, indexes=indexes)
        conn.executemany(
            Statements.put_projection, [(name, packs.view_version(name), 0) for name in names]
        )


def catch_up(
    conn: sqlite3.Connection,
    from_seq: dict[str, int],
    progress: Progress | None = None,
    *,
    fresh: bool = False,
    packs: PackSet | None = None,
) -> int:
    """Fold the log into the views named in ``from_seq`` from their checkpoints on;
    returns how many events were folded. Commits once per chunk. ``fresh``: the
    views are empty (a rebuild), so new keys are not looked up."""
    if not from_seq:
        return 0
    last_seq = _last_seq(conn)
    packs = packs or builtin_packs()
    fold = Fold(conn, packs, dict(from_seq), fresh=fresh, keep_rows=KEEP_ROWS)
    projected = 0
    reads_id = fold.reads_event_id
    chunks = _chunks(
        conn, _chunk_sql(packs, reads_id), min(from_seq.values()), last_seq, packs.event_types
    )
    with _collector_paused():
        for events, end in chunks:
            with transaction(conn):
                fold.apply_many(events)
                fold.flush(checkpoint=end)
            projected += len(events)
            if progress is not None:
                progress(end, last_seq)
    return projected


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a replay folds: every chunk allocates
    thousands of dicts and tuples that live until the chunk is written, so the
    collector ran over and over for nothing (~10-20% of a rebuild's CPU). The fold
    makes no reference cycles: refcounting frees its garbage meanwhile."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_Chunk = list[tuple[int, str, str, dict[str, Any], int]]


def _chunks(
    conn: sqlite3.Connection, sql: str, start: int, last_seq: int, types: frozenset[str] | set[str]
) -> Iterator[tuple[_Chunk, int]]:
    """The projected events after ``start`` as decoded chunks, with the seq each ends at:
    archived ones first (from their segments), then the live table. From the table, an
    event's id is the empty string where ``sql`` (:func:`_chunk_sql`) leaves it out: a
    type whose fold never reads it.

    (Reading the next chunk on a second thread was measured: no faster, since
    decoding and folding both need the GIL, and it held two chunks in memory.)
    """
    archives = _archives_of(conn)
    cursor = start
    if cursor < archives.last_seq:
        events: _Chunk = []
        for seq, body in archives.iter_after(cursor):
            moved = _decode_archived(body)
            if moved.type in types:
                t = moved.recorded_at if moved.occurred_at is None else moved.occurred_at
                events.append((seq, moved.event_id, moved.type, moved.data, t))
            if len(events) >= CHUNK:
                yield events, seq
                events = []
        cursor = archives.last_seq
        yield events, cursor
        if cursor >= last_seq:
            return
    while True:
        rows = conn.execute(sql, (cursor, last_seq, CHUNK)).fetchall()
        decode = _decode_data
        events = [
            (
                s,
                "" if e is None else event_id_text(e),
                ty,
                stored.data,
                recorded_at if stored.occurred_at is None else stored.occurred_at,
            )
            for s, e, ty, recorded_at, payload in rows
            for stored in (decode(b"{" + payload + b"}"),)
        ]
        cursor = rows[-1][0] if len(rows) == CHUNK else last_seq
        yield events, cursor
        if cursor >= last_seq:
            return


def rebuild(
    data_dir: Path, progress: Progress | None = None, *, packs_dir: Path | None = None
) -> RebuildReport:
    """Rebuild every view from the log (daemon stopped: takes the data dir lock), the
    built-in packs' and those in ``packs_dir``.

    Resource handling: views are refilled without their secondary indexes,
    which are built once at the end (faster than keeping them up to date).

    Error handling: :class:`~atlasd.errors.Unavailable` when a daemon holds the
    data dir or there is no database; sqlite3 errors are translated.
    """
    started = time.perf_counter()
    packs = load_packs(packs_dir)
    if not db_path(data_dir).exists():
        raise Unavailable(f"no atlasd database at {db_path(data_dir)}")
    with DataDirLock(data_dir):
        # NORMAL: a rebuild that loses its last chunks to a power cut resumes from the
        # checkpoints at the next open, so a sync per chunk buys nothing
        with translated():
            conn = connect(db_path(data_dir), synchronous="NORMAL")
        try:
            with translated():
                migrate(conn)
                with transaction(conn):
                    drop_unknown_view_tables(conn, packs)
                names = packs.view_names
                reset_views(conn, names, indexes=False, packs=packs)
                projected = catch_up(
                    conn, dict.fromkeys(names, 0), progress, fresh=True, packs=packs
                )
                with transaction(conn):
                    create_view_tables(conn, packs, names)
                events = _last_seq(conn)
        finally:
            conn.close()
    return RebuildReport(events=events, projected=projected, seconds=time.perf_counter() - started)


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute(Statements.log_end).fetchone()
    return int(row[0]) if row else 0
