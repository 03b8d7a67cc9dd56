"""``verify``: is the log whole and are the views exactly what a replay gives?

Checks, all inside one read transaction on a read-only connection (so it is
safe while a daemon appends; it sees one consistent snapshot):

1. ``PRAGMA integrity_check``;
2. the schema: version known, immutability triggers present;
3. the log, archive segments first (each against its record: size, SHA-256,
   event count, the hashes at its ends) then the live table, as one chain:
   seq 1..N without gaps, each stored body matching its columns and
   this data dir's origin, the hash chain, versions 1, 2, 3 ... per stream;
4. every view (and its checkpoint and version) against a fresh replay into a
   private temporary database.

Findings name what is wrong (``seq 7: hash does not match its content``); at
most :data:`MAX_FINDINGS_PER_CHECK` per check, then a count of the rest.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog.archive import (
    ArchiveRecord,
    ArchiveSet,
    archive_dir,
    read_records,
    read_segment,
)
from atlasd.eventlog.chain import GENESIS_HASH, content_hash
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.lineage import LineageEntry, origin_for_seq, read_lineage
from atlasd.eventlog.projections import view_specs
from atlasd.eventlog.replay import KEEP_ROWS
from atlasd.eventlog.rows import body_of, event_id_text
from atlasd.eventlog.sql import (
    DELETE_TRIGGER_SQL,
    SCHEMA_VERSION,
    Statements,
    connect,
    snapshot,
    translated,
)
from atlasd.events import Event
from atlasd.packs.engine import Fold
from atlasd.packs.registry import PackSet, load_packs
from atlasd.packs.tables import create_view_tables

__all__ = ["MAX_FINDINGS_PER_CHECK", "VerifyReport", "verify"]

MAX_FINDINGS_PER_CHECK = 20
_CHUNK = 5_000

Progress = Callable[[int, int], None]


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    events: int
    findings: list[str]
    seconds: float


class _Findings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self._counts: dict[str, int] = {}

    def add(self, check: str, message: str) -> None:
        count = self._counts.get(check, 0) + 1
        self._counts[check] = count
        if count <= MAX_FINDINGS_PER_CHECK:
            self.items.append(message)

    def finish(self) -> list[str]:
        for check, count in self._counts.items():
            if count > MAX_FINDINGS_PER_CHECK:
                self.items.append(f"{check}: {count - MAX_FINDINGS_PER_CHECK} more findings")
        return self.items


_decode_event = msgspec.json.Decoder(Event).decode


def verify(
    data_dir: Path, progress: Progress | None = None, *, packs_dir: Path | None = None
) -> VerifyReport:
    """Check the data dir's log and views (those of the built-in packs and of the
    packs in ``packs_dir``); ``ok`` when nothing was found.

    Error handling: a missing database raises :class:`Unavailable`; sqlite3
    errors are translated.
    """
    started = time.perf_counter()
    packs = load_packs(packs_dir)
    path = db_path(data_dir)
    if not path.exists():
        raise Unavailable(f"no atlasd database at {path}")
    findings = _Findings()
    with translated():
        conn = connect(path, readonly=True)
    try:
        with snapshot(conn):  # one snapshot for every check
            events = _verify(conn, path, packs, findings, progress)
    finally:
        conn.close()
    items = findings.finish()
    return VerifyReport(
        ok=not items, events=events, findings=items, seconds=time.perf_counter() - started
    )


def _verify(
    conn: sqlite3.Connection,
    path: Path,
    packs: PackSet,
    findings: _Findings,
    progress: Progress | None,
) -> int:
    integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if integrity != ["ok"]:
        for line in integrity:
            findings.add("integrity", f"integrity_check: {line}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        findings.add("schema", f"schema version is {version}, expected {SCHEMA_VERSION}")
        return 0
    triggers = {name for (name,) in conn.execute(Statements.trigger_names)}
    for name in (
        "events_refuse_update",
        "events_refuse_delete",
        "archives_refuse_update",
        "archives_refuse_delete",
    ):
        if name not in triggers:
            findings.add("schema", f"immutability trigger {name} is missing")
    delete_rule = conn.execute(Statements.trigger_sql, ("events_refuse_delete",)).fetchone()
    if delete_rule is not None and delete_rule[0] != DELETE_TRIGGER_SQL:
        findings.add("schema", "immutability trigger events_refuse_delete was altered")
    row = conn.execute(Statements.get_meta, ("origin",)).fetchone()
    origin = str(row[0]) if row else ""
    if not origin:
        findings.add("schema", "the data dir has no origin")
    last = conn.execute(Statements.log_end).fetchone()
    last_seq = int(last[0]) if last else 0

    # "": a private temporary database on disk, so that replaying a big log into it
    # costs page cache, not memory
    memory = sqlite3.connect("", isolation_level=None)
    try:
        create_view_tables(memory, packs, packs.view_names)
        fold = Fold(
            memory, packs, dict.fromkeys(packs.view_names, 0), fresh=True, keep_rows=KEEP_ROWS
        )
        count = _verify_log(
            conn, archive_dir(path.parent), origin, last_seq, fold, findings, progress
        )
        fold.flush()
        _verify_views(conn, memory, packs, last_seq, findings)
    finally:
        memory.close()
    return count


_Row = tuple[int, str | None, str | None, int | None, str | None, int | None, str | None, bytes]


def _archived_rows(
    directory: Path, records: list[ArchiveRecord], findings: _Findings
) -> Iterator[tuple[ArchiveRecord, list[_Row] | None]]:
    """Each record with its segment's events (None when the segment fails its record)."""
    for record in records:
        try:
            bodies = read_segment(directory, record)
        except Unavailable as exc:
            findings.add("archive", f"seqs {record.first_seq}..{record.last_seq}: {exc.message}")
            yield record, None
            continue
        rows: list[_Row] = [
            (record.first_seq + i, None, None, None, None, None, None, body)
            for i, body in enumerate(bodies)
        ]
        yield record, rows


def _live_rows(conn: sqlite3.Connection, after: int) -> Iterator[list[_Row]]:
    cursor = after
    while True:
        stored = conn.execute(Statements.checked_rows_after, (cursor, _CHUNK)).fetchall()
        if not stored:
            return
        rows: list[_Row] = [
            (s, event_id_text(i), st, v, ty, at, h.hex(), body_of(s, i, st, v, ty, h, p))
            for s, i, st, v, ty, h, p, at in stored
        ]
        yield rows
        cursor = rows[-1][0]


def _verify_log(
    conn: sqlite3.Connection,
    directory: Path,
    origin: str,
    last_seq: int,
    fold: Fold,
    findings: _Findings,
    progress: Progress | None,
) -> int:
    lineage = read_lineage(conn)
    state = _Chain()
    records = read_records(conn)
    for record, rows in _archived_rows(directory, records, findings):
        if record.first_seq != state.expected_seq or record.prev_hash != state.prev_hash:
            findings.add(
                "archive",
                f"archive {record.file}: does not continue the chain at seq"
                f" {state.expected_seq} (starts at {record.first_seq})",
            )
        if rows is None:  # the segment is missing or altered: resume after it
            state.expected_seq = record.last_seq + 1
            state.prev_hash = record.last_hash
            continue
        _check_rows(rows, state, lineage, origin, fold, findings, archived=True)
        if state.prev_hash != record.last_hash:
            findings.add("archive", f"archive {record.file}: last hash differs from its record")
        if fold.pending >= _CHUNK:
            fold.flush()
        if progress is not None:
            progress(record.last_seq, last_seq)
    archived_end = records[-1].last_seq if records else 0
    _check_overlap(conn, ArchiveSet(directory.parent, records), archived_end, findings)
    for rows in _live_rows(conn, archived_end):
        _check_rows(rows, state, lineage, origin, fold, findings, archived=False)
        if fold.pending >= _CHUNK:
            fold.flush()
        if progress is not None:
            progress(rows[-1][0], last_seq)
    return state.count


def _check_overlap(
    conn: sqlite3.Connection, archives: ArchiveSet, archived_end: int, findings: _Findings
) -> None:
    """Live rows an interrupted compaction archived but did not delete yet must be the
    very events their segment holds (the next compaction deletes them)."""
    rows = conn.execute(Statements.rows_between, (1, archived_end)).fetchall()
    for row in rows:
        seq, body = row[0], body_of(*row)
        try:
            archived = archives.body_of(int(seq))
        except Unavailable:
            continue  # the segment itself is reported by the archive check
        if archived != bytes(body):
            findings.add("archive", f"seq {seq}: live row differs from its archived copy")


class _Chain:
    """Where the walk along the log is."""

    def __init__(self) -> None:
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.versions: dict[str, int] = {}
        self.count = 0


def _check_rows(
    rows: list[_Row],
    state: _Chain,
    lineage: list[LineageEntry],
    origin: str,
    fold: Fold,
    findings: _Findings,
    *,
    archived: bool,
) -> None:
    versions = state.versions
    for seq, event_id, stream, version, event_type, recorded_at, stored_hash, body in rows:
        state.count += 1
        expected_seq = state.expected_seq
        if seq != expected_seq:
            missing = (
                f"{expected_seq}" if seq == expected_seq + 1 else (f"{expected_seq}..{seq - 1}")
            )
            findings.add("seq", f"seq {missing} missing: seq {seq} follows {expected_seq - 1}")
        state.expected_seq = seq + 1
        try:
            event = _decode_event(body)
        except msgspec.DecodeError as exc:
            findings.add("body", f"seq {seq}: stored event does not decode: {exc}")
            state.prev_hash = stored_hash or state.prev_hash
            continue
        if archived:
            if event.seq != seq:
                findings.add("body", f"seq {seq}: archived event says seq {event.seq}")
        else:
            columns = (seq, event_id, stream, version, event_type, recorded_at, stored_hash)
            decoded = (
                event.seq,
                event.event_id,
                event.stream,
                event.version,
                event.type,
                event.recorded_at,
                event.hash,
            )
            if columns != decoded:
                findings.add("body", f"seq {seq}: stored event disagrees with its indexed columns")
        if event.origin != origin_for_seq(lineage, origin, seq):
            findings.add(
                "body",
                f"seq {seq}: origin {event.origin} is not this data dir's (at that seq)",
            )
        if content_hash(state.prev_hash, event) != event.hash:
            findings.add(
                "hash",
                f"seq {seq}: hash does not match its content and the previous event"
                " (altered, reordered or a predecessor is missing)",
            )
        state.prev_hash = event.hash
        want = versions.get(event.stream, 0) + 1
        if event.version != want:
            findings.add(
                "version",
                f"seq {seq}: stream {event.stream!r} version {event.version}, expected {want}",
            )
        versions[event.stream] = event.version
        fold.apply(seq, event.event_id, event.type, event.data, event.when)


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    yield from conn.execute(f"SELECT * FROM {table} ORDER BY row_seq")


def _verify_views(
    conn: sqlite3.Connection,
    memory: sqlite3.Connection,
    packs: PackSet,
    last_seq: int,
    findings: _Findings,
) -> None:
    stored = {name: (v, cp) for name, v, cp in conn.execute(Statements.projections)}
    for name, spec in view_specs(packs).items():
        version, checkpoint = stored.get(name, (None, None))
        if version != spec.version:
            findings.add(name, f"view {name}: projector version {version}, code has {spec.version}")
            continue
        if checkpoint != last_seq:
            findings.add(name, f"view {name}: checkpoint {checkpoint}, log ends at {last_seq}")
        _compare(name, spec.table, spec.key, conn, memory, findings)


def _compare(
    view: str,
    table: str,
    key: tuple[str, ...],
    conn: sqlite3.Connection,
    memory: sqlite3.Connection,
    findings: _Findings,
) -> None:
    try:
        names = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
        stored_rows = _rows(conn, table)
    except sqlite3.Error as exc:
        findings.add(view, f"view {view}: cannot be read: {exc}")
        return
    replay_names = [c[1] for c in memory.execute(f"PRAGMA table_info({table})")]
    if names != replay_names:
        findings.add(view, f"view {view}: columns {names} differ from {replay_names}")
        return
    key_at = [names.index(k) for k in key]

    def show(row: tuple[Any, ...]) -> str:
        return "/".join(str(row[i]) for i in key_at)

    replay_rows = _rows(memory, table)
    a = next(stored_rows, None)
    b = next(replay_rows, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            findings.add(view, f"view {view}: row {show(a)} is not in a replay of the log")
            a = next(stored_rows, None)
        elif a is None or b[0] < a[0]:
            findings.add(view, f"view {view}: row {show(b)} is missing")
            b = next(replay_rows, None)
        else:
            if a != b:
                diffs = [
                    f"{n}={x!r} (replay: {y!r})"
                    for n, x, y in zip(names, a, b, strict=True)
                    if x != y or type(x) is not type(y)
                ]
                findings.add(view, f"view {view}: row {show(a)} differs: {', '.join(diffs)}")
            a = next(stored_rows, None)
            b = next(replay_rows, None)
