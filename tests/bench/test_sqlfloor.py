"""The SQL floor's recorder keeps each statement's parameters as they were when run."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

import bench.sqlfloor as sqlfloor


def test_rows_changed_after_an_executemany_are_recorded_as_they_were_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer's fold hands executemany its cached row lists and changes them in later
    groups; the recording keeps the values the statement inserted, not the later ones."""
    calls: list[Any] = []
    monkeypatch.setattr(sqlfloor, "_recorded", calls)
    conn = sqlite3.connect(":memory:", factory=sqlfloor._Recording, check_same_thread=False)
    conn.execute("CREATE TABLE t (a, b)")
    row = [1, "first"]

    def writer() -> None:
        conn.executemany("INSERT INTO t VALUES (?, ?)", [row])
        row[1] = "changed later"  # as a later group's fold changes a cached row

    thread = threading.Thread(target=writer, name="atlasd-writer-test")
    thread.start()
    thread.join()
    assert conn.execute("SELECT b FROM t").fetchall() == [("first",)]
    ((many, _sql, params),) = [c for c in calls if c[0]]
    assert many
    assert [list(p) for p in params] == [[1, "first"]]
