"""Keyset pages over columns that may be null, in both directions, at every page size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore
from atlasd.eventlog.projections import QueryParams
from atlasd.events import NewEvent


async def _builds(store: EventStore) -> None:
    events = []
    for i in range(30):
        build = {"build_id": f"b{i:03d}"}
        events.append(
            NewEvent(
                stream=f"build:{i}",
                type="BuildStarted",
                data={**build, "prd_id": "p", "prd_name": "n"},
                occurred_at=100 + i % 4,
            )
        )
        if i % 3 == 0:  # the others keep completed_at null
            events.append(
                NewEvent(
                    stream=f"build:{i}",
                    type="BuildCompleted",
                    data={**build, "status": "completed"},
                    occurred_at=200 + i % 5,
                )
            )
    await store.append_batch(events)


@pytest.mark.parametrize("order_by", ["completed_at", "started_at", "build_id", None])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 3, 7, 100])
async def test_pages_cover_null_and_set_values_once_in_sql_order(
    store: EventStore, order_by: str | None, order: str, limit: int
) -> None:
    """Nulls sort first ascending and last descending; every row appears once."""
    await _builds(store)
    rows, after = [], None
    while True:
        page = await store.query_page(
            QueryParams(view="builds", limit=limit, order=order, order_by=order_by, after=after)
        )
        rows += page.rows
        if page.next is None:
            break
        after = page.next
    assert len(rows) == 30 == len({row["build_id"] for row in rows})
    if order_by is not None:
        keys = [(row[order_by] is not None, row[order_by] or 0) for row in rows]
        assert keys == sorted(keys, reverse=order == "desc")


async def test_since_alone_orders_by_the_main_time_column(store: EventStore) -> None:
    """since without order_by ranges over (and sorts by) the view's first time column."""
    await _builds(store)
    page = await store.query_page(QueryParams(view="builds", since=102))
    assert {row["started_at"] for row in page.rows} == {102, 103}
    assert [row["started_at"] for row in page.rows] == sorted(
        row["started_at"] for row in page.rows
    )


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("view_learnings", "recorded_at"),
        ("view_tasks", "updated_at"),
        ("view_tasks", "task_id"),
        ("view_builds", "completed_at"),
        ("view_executions", "recorded_at"),
    ],
)
async def test_every_order_column_has_an_index_so_pages_do_not_scan(
    store: EventStore, data_dir: Path, table: str, column: str
) -> None:
    """A page after a cursor is one index range: no scan, no sort step."""
    conn = sqlite3.connect(data_dir / "atlasd.db")
    try:
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE ({column}, row_seq) > (?, ?)"
            f" ORDER BY {column}, row_seq LIMIT 10",
            ("x", 1),
        ).fetchall()
    finally:
        conn.close()
    details = " | ".join(row[3] for row in plan)
    assert "SEARCH" in details, details
    assert "TEMP B-TREE" not in details, details


async def test_verify_accepts_the_old_origin_for_the_seqs_written_under_it(
    store: EventStore, data_dir: Path
) -> None:
    """After a re-origin, old events keep their origin and verify still finds nothing;
    an event claiming the old origin after the switch would be a finding."""
    from atlasd.eventlog.verify import verify

    await _builds(store)
    old = store.origin
    new = await store.reorigin("test")
    await store.append(NewEvent(stream="x", type="T", data={}))
    assert [entry.origin for entry in store.lineage] == [old]
    await store.close()
    assert verify(data_dir).findings == []
    conn = sqlite3.connect(data_dir / "atlasd.db")
    try:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'origin'", (old,))
        conn.commit()
    finally:
        conn.close()
    findings = verify(data_dir).findings
    assert any(f"origin {new} is not this data dir's" in f for f in findings)
