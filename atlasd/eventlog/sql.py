"""The store's SQL: schema, migrations keyed on ``PRAGMA user_version``, named
statements, connection set-up, the one transaction helper (:func:`transaction`,
:func:`snapshot`) and the one place sqlite3 errors become atlasd's.

View tables belong to the projectors (:mod:`atlasd.eventlog.projections.schema`),
which drop and recreate them when their version changes.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from atlasd.errors import AtlasdError, Internal, Unavailable
from atlasd.eventlog.rows import FIXED_BYTES, body_of, stored_row

__all__ = [
    "DELETE_TRIGGER_SQL",
    "IDS_PER_LOOKUP",
    "SCHEMA_VERSION",
    "Statements",
    "Transaction",
    "connect",
    "events_by_ids",
    "migrate",
    "require_current",
    "snapshot",
    "transaction",
    "translate_error",
    "translated",
]

SCHEMA_VERSION = 3

#: The one delete the events table allows: rows a recorded archive covers
#: (``verify`` compares the stored trigger with this text).
DELETE_TRIGGER_SQL = (
    "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events"
    " WHEN NOT EXISTS (SELECT 1 FROM archives a WHERE OLD.seq BETWEEN a.first_seq AND a.last_seq)"
    " BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END"
)

#: The events table since schema 3: each part of an event stored once, in its
#: smallest form (atlasd/eventlog/rows.py rebuilds the stored event from a row).
EVENTS_TABLE_SQL = """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        event_id BLOB NOT NULL UNIQUE,  -- the UUID's 16 bytes
        stream TEXT NOT NULL,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        hash BLOB NOT NULL,  -- the SHA-256's 32 bytes
        payload BLOB NOT NULL,  -- the event's JSON from "data" up to the hash
        UNIQUE (stream, version)
    )
"""
_UPDATE_TRIGGER_SQL = (
    "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events"
    " BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END"
)
#: Rows, and bytes of stored events, the migration to schema 3 holds at once: events
#: may be up to 1 MiB each, so a count alone would not bound its memory.
_MIGRATE_CHUNK = 5_000
_MIGRATE_BYTES = 8 << 20


def _compact_events(conn: sqlite3.Connection) -> None:
    """3: the events table in its compact layout: the id and hash as bytes, the body
    without the parts its columns hold. Every row is rebuilt from its new form and
    compared with the old body before the old table goes, so a row that does not
    round-trip (a body that disagrees with its columns) stops the migration and
    leaves the database at schema 2."""
    conn.execute(EVENTS_TABLE_SQL.replace("CREATE TABLE events", "CREATE TABLE events_compact"))
    cursor = 0
    while True:
        new: list[tuple[Any, ...]] = []
        size = 0
        # rows are stepped through one at a time, up to the chunk's count or bytes
        rows = conn.execute(
            "SELECT seq, event_id, stream, version, type, recorded_at, hash, body FROM events"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor, _MIGRATE_CHUNK),
        )
        for seq, event_id, stream, version, event_type, recorded_at, digest, body in rows:
            try:
                row = stored_row(
                    seq, event_id, stream, version, event_type, recorded_at, digest, bytes(body)
                )
                same = body_of(row[0], row[1], row[2], row[3], row[4], row[6], row[7]) == bytes(
                    body
                )
            except (ValueError, TypeError, AttributeError):  # a column of another type
                same = False
            if not same:
                raise Unavailable(
                    f"seq {seq}: the stored event disagrees with its columns; the database"
                    " is left at schema 2 (run atlasd verify with the version that wrote it)"
                )
            new.append(row)
            size += len(body)
            if size >= _MIGRATE_BYTES:
                break
        rows.close()
        if not new:
            break
        conn.executemany(
            "INSERT INTO events_compact (seq, event_id, stream, version, type, recorded_at,"
            " hash, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            new,
        )
        cursor = int(new[-1][0])
    # dropping a table drops its triggers first, so no delete trigger fires
    conn.execute("DROP TABLE events")
    conn.execute("ALTER TABLE events_compact RENAME TO events")
    conn.execute(_UPDATE_TRIGGER_SQL)
    conn.execute(DELETE_TRIGGER_SQL)


# Each entry moves the schema from user_version i to i + 1: a script, or a function
# run inside the migration's transaction.
_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    """
    CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS events (
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
    );
    CREATE TRIGGER IF NOT EXISTS events_refuse_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END;
    CREATE TRIGGER IF NOT EXISTS events_refuse_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END;
    CREATE TABLE IF NOT EXISTS projections (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        checkpoint INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS sync_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        acked_seq INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO sync_cursor (id, acked_seq) VALUES (1, 0);
    CREATE TABLE IF NOT EXISTS quarantine (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        retry INTEGER NOT NULL DEFAULT 0,
        at_ms INTEGER NOT NULL
    );
    """,
    # 2: retention. Events move out to archive segments (atlasd/eventlog/archive.py);
    # a row may be deleted only when a recorded archive covers its seq, and the
    # records themselves can never change. What a moved event leaves behind: its
    # event_id (duplicates stay duplicates) and its stream's version (versions go on).
    """
    CREATE TABLE IF NOT EXISTS archives (
        first_seq INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        last_hash TEXT NOT NULL,
        events INTEGER NOT NULL,
        file TEXT NOT NULL UNIQUE,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TRIGGER IF NOT EXISTS archives_refuse_update BEFORE UPDATE ON archives
    BEGIN SELECT RAISE(ABORT, 'archive records are immutable: UPDATE refused'); END;
    CREATE TRIGGER IF NOT EXISTS archives_refuse_delete BEFORE DELETE ON archives
    BEGIN SELECT RAISE(ABORT, 'archive records are immutable: DELETE refused'); END;
    CREATE TABLE IF NOT EXISTS archived_ids (
        event_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS archived_streams (
        stream TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID;
    DROP TRIGGER IF EXISTS events_refuse_delete;
    """
    + DELETE_TRIGGER_SQL
    + ";",
    _compact_events,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


#: The most ids :func:`events_by_ids` binds at once (far below SQLite's limit on variables).
IDS_PER_LOOKUP = 256


@functools.cache
def events_by_ids(count: int) -> str:
    """The live events among ``count`` ids (their 16 bytes): id, seq, stream, version,
    type and payload of each one found, in no particular order."""
    marks = ", ".join("?" * count)
    return (
        "SELECT event_id, seq, stream, version, type, payload FROM events"
        f" WHERE event_id IN ({marks})"
    )


def _row_columns(table: str) -> str:
    return (
        f"{table}seq, CAST({table}event_id AS BLOB), CAST({table}stream AS TEXT),"
        f" CAST({table}version AS INTEGER), CAST({table}type AS TEXT),"
        f" CAST({table}hash AS BLOB), CAST({table}payload AS BLOB)"
    )


class Statements:
    """Named statements on the core tables."""

    get_meta = "SELECT value FROM meta WHERE key = ?"
    put_meta = "INSERT INTO meta (key, value) VALUES (?, ?)"
    set_meta = (
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    insert_event = (
        "INSERT INTO events (seq, event_id, stream, version, type, recorded_at, hash, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    last_seq = "SELECT max(seq) FROM events"
    # the end of the log: the last live event, else the last archived one (hash as hex)
    log_end = (
        "SELECT seq, hash FROM (SELECT seq, lower(hex(hash)) AS hash FROM events"
        " ORDER BY seq DESC LIMIT 1)"
        " UNION ALL SELECT last_seq, last_hash FROM"
        " (SELECT last_seq, last_hash FROM archives ORDER BY first_seq DESC LIMIT 1)"
        " ORDER BY seq DESC LIMIT 1"
    )
    stream_version = (
        "SELECT max(v) FROM (SELECT max(version) AS v FROM events WHERE stream = ?"
        " UNION ALL SELECT version FROM archived_streams WHERE stream = ?)"
    )
    archived_seq_of = "SELECT seq FROM archived_ids WHERE event_id = ?"
    archives = (
        "SELECT first_seq, last_seq, prev_hash, last_hash, events, file, bytes, sha256"
        " FROM archives ORDER BY first_seq"
    )
    put_archive = (
        "INSERT INTO archives (first_seq, last_seq, prev_hash, last_hash, events, file, bytes,"
        " sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    put_archived_id = "INSERT OR IGNORE INTO archived_ids (event_id, seq) VALUES (?, ?)"
    put_archived_stream = (
        "INSERT INTO archived_streams (stream, version) VALUES (?, ?)"
        " ON CONFLICT (stream) DO UPDATE SET version = max(version, excluded.version)"
    )
    delete_archived = "DELETE FROM events WHERE seq BETWEEN ? AND ?"
    # a row as rows.body_of takes it; the casts keep a row altered by hand (a blob made
    # text, a number made a string) readable, so that verify reports it as a finding
    row = _row_columns("")
    # read_raw's byte budget: the length of each rebuilt event, without its payload's
    # pages (json_quote writes a stream or type exactly as the event's JSON does)
    read_sizes = (
        f"seq, {FIXED_BYTES} + length(seq) + length(version) + length(payload)"
        " + length(CAST(json_quote(stream) AS BLOB)) + length(CAST(json_quote(type) AS BLOB))"
    )
    read_raw_until = f"SELECT {row} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq"
    rows_between = f"SELECT {row} FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq"
    rows_up_to = f"SELECT {row} FROM events WHERE seq <= ? ORDER BY seq LIMIT ?"
    rows_after = f"SELECT {row} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
    # replay: the projected events of a seq range ({types}: the quoted type names; the
    # event id only of those in {id_types}, whose fold reads it)
    projected_chunk = (
        "SELECT seq, CASE WHEN type IN ({id_types}) THEN event_id END, type, recorded_at,"
        " payload FROM events"
        " WHERE seq > ? AND seq <= ? AND type IN ({types}) ORDER BY seq LIMIT ?"
    )
    # compaction's cut: the first event recorded at or after a time, the first quarantined
    first_recorded_since = "SELECT min(seq) FROM events WHERE recorded_at >= ?"
    first_quarantined = "SELECT min(seq) FROM quarantine"
    # compaction by size: live events, the seq of the Nth, those of a seq range
    count_live = "SELECT count(*) FROM events"
    live_seq_at = "SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?"
    rows_in_range = f"SELECT {row} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
    # compaction's moves: the next rows of a recorded range, and whether any is left
    rows_to_move = f"SELECT {row} FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?"
    any_live_between = "SELECT 1 FROM events WHERE seq BETWEEN ? AND ? LIMIT 1"
    # a backup's counts: live events, archived ones, and rows both live and archived
    live_counts = "SELECT coalesce(max(seq), 0), count(*) FROM events"
    archived_counts = "SELECT coalesce(max(last_seq), 0), coalesce(sum(events), 0) FROM archives"
    live_up_to = "SELECT count(*) FROM events WHERE seq <= ?"
    has_archives = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'archives'"
    trigger_names = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    trigger_sql = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?"
    # verify: a row with every column
    checked_rows_after = f"SELECT {row}, recorded_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
    count_streams = (
        "SELECT count(*) FROM (SELECT stream FROM events UNION SELECT stream FROM archived_streams)"
    )
    recorded_at_of = "SELECT recorded_at FROM events WHERE seq = ?"
    projections = "SELECT name, version, checkpoint FROM projections ORDER BY name"
    put_projection = (
        "INSERT OR REPLACE INTO projections (name, version, checkpoint) VALUES (?, ?, ?)"
    )
    acked_seq = "SELECT acked_seq FROM sync_cursor WHERE id = 1"
    advance_cursor = "UPDATE sync_cursor SET acked_seq = max(acked_seq, ?) WHERE id = 1"
    rewind_cursor = "UPDATE sync_cursor SET acked_seq = 0 WHERE id = 1"
    quarantine_count = "SELECT count(*) FROM quarantine"
    quarantine_put = (
        "INSERT OR REPLACE INTO quarantine (seq, event_id, code, message, retry, at_ms)"
        " VALUES (?, ?, ?, ?, 0, ?)"
    )
    quarantine_all = "SELECT seq, event_id, code, message FROM quarantine ORDER BY seq"
    quarantine_first = "SELECT seq, event_id, code, message FROM quarantine ORDER BY seq LIMIT ?"
    quarantine_requeue = "UPDATE quarantine SET retry = 1 WHERE retry = 0"
    quarantine_to_retry = (
        f"SELECT {_row_columns('e.')} FROM quarantine q JOIN events e ON e.seq = q.seq"
        " WHERE q.retry = 1 ORDER BY q.seq LIMIT ?"
    )
    # flagged events no longer live (archived; re-sent and refused after a re-origin)
    quarantine_to_retry_archived = (
        "SELECT q.seq FROM quarantine q WHERE q.retry = 1 AND q.seq <= ?"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = q.seq) ORDER BY q.seq LIMIT ?"
    )
    quarantine_delete = "DELETE FROM quarantine WHERE event_id = ?"
    quarantine_drop_code = "DELETE FROM quarantine WHERE code = ?"
    quarantine_update = (
        "UPDATE quarantine SET code = ?, message = ?, retry = 0, at_ms = ? WHERE event_id = ?"
    )


def connect(path: Path, *, readonly: bool = False, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, given sync level.

    A read-only connection opens the file with ``mode=ro`` so that it can never
    write, even by accident (``verify`` uses one while a daemon runs).
    """
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the core schema to :data:`SCHEMA_VERSION`; returns the version found.

    Error handling: a database from a newer atlasd is refused with
    :class:`Unavailable` rather than touched.
    """
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise Unavailable(
            f"the database has schema {found}, newer than this atlasd knows ({SCHEMA_VERSION})"
        )
    if found == 0 and conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
        # a new file: free pages can go back to the file system in small steps (an
        # existing file changes mode only through a VACUUM, done by `atlasd compact`)
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")  # of an empty file: instant; in WAL mode the mode takes only so
    for version in range(found, SCHEMA_VERSION):
        step = _MIGRATIONS[version]
        with transaction(conn):
            # another connection may have taken this step while this one waited for
            # the write lock: the version read under the lock decides
            if conn.execute("PRAGMA user_version").fetchone()[0] > version:
                continue
            if callable(step):
                step(conn)
            else:
                for statement in _split(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
    if 0 < found < 3:
        # the rewrite of the events table passed every page through the WAL: empty it
        # now rather than keep a file larger than the database for as long as this runs
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return found


def require_current(conn: sqlite3.Connection) -> None:
    """Refuse to read a database whose schema is not this code's (a read-only reader
    cannot migrate it): :class:`Unavailable` saying what to do."""
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if found != SCHEMA_VERSION:
        raise Unavailable(
            f"the database has schema {found}, this atlasd reads {SCHEMA_VERSION}:"
            + (
                " start the daemon (or run atlasd rebuild) once to migrate it"
                if found < SCHEMA_VERSION
                else " it was written by a newer atlasd"
            )
        )


def _split(script: str) -> list[str]:
    """Statements of a migration script (triggers keep their inner ``;``)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def translate_error(exc: sqlite3.Error, *, size_cap: int | None = None) -> AtlasdError:
    """The atlasd error for a sqlite3 error; the only place they are translated."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL":
        if size_cap is not None:
            return Unavailable(
                f"the database reached its size cap of {size_cap} bytes (max_db_bytes);"
                " appends refused"
            )
        return Unavailable(f"disk full: {exc}; appends refused until space is freed")
    if name.startswith("SQLITE_IOERR"):
        return Unavailable(f"disk I/O error ({name}): {exc}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return Unavailable(f"database is locked by another process: {exc}")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return Unavailable(f"database cannot be written: {exc}")
    return Internal(f"sqlite error ({name or type(exc).__name__}): {exc}")


#: Called after a database error to tell a full disk from the size cap: the cap in
#: bytes when the database is at it, else None.
SizeCap = Callable[[], int | None]


class Transaction:
    """One explicit transaction on an autocommit connection: begin, commit, roll back,
    and every sqlite3 error raised as the store's own (:func:`translate_error`).

    Used as a context manager (``with transaction(conn): ...``: commit on success,
    rollback on any exception), or step by step when a transaction spans several
    calls (a streamed append): :meth:`begin`, :meth:`guard` around each piece of
    work, then :meth:`commit` or :meth:`rollback`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        mode: Literal["IMMEDIATE", "DEFERRED"] = "IMMEDIATE",
        size_cap: SizeCap | None = None,
    ) -> None:
        self.conn = conn
        self._mode = mode
        self._size_cap = size_cap

    def error(self, exc: sqlite3.Error) -> AtlasdError:
        """The store's error for ``exc`` (a full database names its cap when at it)."""
        return _translate(exc, self._size_cap)

    def guard(self) -> contextlib.AbstractContextManager[None]:
        """Raise sqlite3 errors of the enclosed work as the store's errors (no rollback:
        the caller decides)."""
        return translated(self._size_cap)

    def begin(self) -> None:
        with self.guard():
            self.conn.execute(f"BEGIN {self._mode}")

    def commit(self) -> None:
        """Commit; on failure roll back and raise the translated error."""
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.rollback()
            raise self.error(exc) from exc

    def rollback(self) -> None:
        """Undo whatever is open (nothing when SQLite already rolled back)."""
        if self.conn.in_transaction:
            # a failing ROLLBACK must not hide the error that led here
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def __enter__(self) -> sqlite3.Connection:
        self.begin()
        return self.conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.commit()
            return
        self.rollback()
        if isinstance(exc, sqlite3.Error):
            raise self.error(exc) from exc


@contextlib.contextmanager
def translated(size_cap: SizeCap | None = None) -> Iterator[None]:
    """Raise the sqlite3 errors of the enclosed work as the store's errors
    (:func:`translate_error`); outside a transaction, or around one's pieces."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc, size_cap) from exc


def _translate(exc: sqlite3.Error, size_cap: SizeCap | None) -> AtlasdError:
    cap = None
    if size_cap is not None and getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        with contextlib.suppress(sqlite3.Error):
            cap = size_cap()
    return translate_error(exc, size_cap=cap)


def transaction(conn: sqlite3.Connection, *, size_cap: SizeCap | None = None) -> Transaction:
    """A write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front, so it
    never fails half-way for want of it); see :class:`Transaction`."""
    return Transaction(conn, size_cap=size_cap)


def snapshot(conn: sqlite3.Connection) -> Transaction:
    """A read transaction: one consistent view of the database for everything inside."""
    return Transaction(conn, mode="DEFERRED")
