"""The one transaction helper: commit, rollback, and sqlite3 errors as the store's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.errors import Internal, Unavailable
from atlasd.eventlog.sql import connect, snapshot, transaction


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    opened = connect(tmp_path / "t.db")
    opened.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    try:
        yield opened
    finally:
        opened.close()


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def _insert_then(
    conn: sqlite3.Connection, text: str | None, error: Exception | None = None
) -> None:
    """One row 'a', then one with ``text`` (NULL breaks a constraint), then ``error``."""
    with transaction(conn):
        conn.execute("INSERT INTO t (text) VALUES ('a')")
        conn.execute("INSERT INTO t (text) VALUES (?)", (text,))
        if error is not None:
            raise error


def test_a_transaction_commits_what_its_block_wrote(conn: sqlite3.Connection) -> None:
    """Leaving the block normally commits: the rows are there and no transaction is open."""
    with transaction(conn) as tx_conn:
        tx_conn.execute("INSERT INTO t (text) VALUES ('a'), ('b')")
        assert conn.in_transaction
    assert not conn.in_transaction
    assert _count(conn) == 2


def test_any_exception_rolls_the_block_back_and_passes_through(
    conn: sqlite3.Connection,
) -> None:
    """An exception that is not sqlite's leaves unchanged, with nothing of the block kept."""
    with pytest.raises(KeyError):
        _insert_then(conn, "b", KeyError("boom"))
    assert not conn.in_transaction
    assert _count(conn) == 0


def test_a_sqlite_error_becomes_the_stores_error_after_the_rollback(
    conn: sqlite3.Connection,
) -> None:
    """A constraint failure is rolled back and raised as ``internal`` naming sqlite's error."""
    with pytest.raises(Internal, match="SQLITE_CONSTRAINT") as caught:
        _insert_then(conn, None)
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert not conn.in_transaction
    assert _count(conn) == 0


def test_a_full_database_names_its_size_cap(conn: sqlite3.Connection) -> None:
    """At ``max_page_count`` the error is ``unavailable`` naming the cap the caller reports."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with (
        pytest.raises(Unavailable, match="size cap of 12345 bytes"),
        transaction(conn, size_cap=lambda: 12345),
    ):
        conn.executemany("INSERT INTO t (text) VALUES (?)", [("x" * 1000,) for _ in range(100)])
    assert _count(conn) == 0
    with pytest.raises(Unavailable, match="disk full"), transaction(conn):
        conn.executemany("INSERT INTO t (text) VALUES (?)", [("x" * 1000,) for _ in range(100)])


def test_a_busy_database_is_unavailable_and_the_holder_keeps_its_transaction(
    tmp_path: Path, conn: sqlite3.Connection
) -> None:
    """BEGIN IMMEDIATE while another connection writes fails as ``unavailable`` up front."""
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=0)
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        with transaction(conn):
            conn.execute("INSERT INTO t (text) VALUES ('held')")
            with pytest.raises(Unavailable, match="locked"), transaction(other):
                pass
            assert not other.in_transaction
    finally:
        other.close()
    assert _count(conn) == 1


def test_a_snapshot_sees_one_state_while_others_commit(
    tmp_path: Path, conn: sqlite3.Connection
) -> None:
    """Reads inside a snapshot do not see a commit made after it began."""
    conn.execute("INSERT INTO t (text) VALUES ('a')")
    reader = connect(tmp_path / "t.db", readonly=True)
    try:
        with snapshot(reader):
            assert _count(reader) == 1
            conn.execute("INSERT INTO t (text) VALUES ('b')")
            assert _count(reader) == 1
        assert _count(reader) == 2
    finally:
        reader.close()
