"""Reading a view at any size: keyset pages over a real daemon, cursors as untrusted input."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.client import Client
from atlasd.client.calls import QueryArgs
from atlasd.errors import BadRequest
from atlasd.eventlog import EventStore
from atlasd.eventlog.config import StoreConfig
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess, start_daemon

ROWS = 50_000
PAGE = 1000


def learning(i: int, occurred_at: int | None = None) -> NewEvent:
    return NewEvent(
        stream=f"learning:l{i:06d}",
        type="LearningRecorded",
        data={"learning_id": f"l{i:06d}", "insight": f"insight {i}", "category": f"c{i % 5}"},
        occurred_at=1_700_000_000_000 + (i * 7919) % 100_000
        if occurred_at is None
        else occurred_at,
    )


def fill(data_dir: Path, count: int) -> None:
    """A data dir whose learnings view has ``count`` rows (written directly: fast)."""

    async def go() -> None:
        async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
            for start in range(0, count, 5000):
                await store.append_batch(
                    [learning(i) for i in range(start, min(count, start + 5000))]
                )

    asyncio.run(go())


@pytest.fixture(scope="module")
def big_daemon() -> Iterator[DaemonProcess]:
    root = Path(tempfile.mkdtemp(prefix="atlasd-", dir="/tmp"))
    fill(root / "data", ROWS)
    daemon = start_daemon(root)
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def walk(client: Client, args: QueryArgs, between: int = 0, start: int = ROWS) -> list[dict]:
    """Follow ``next`` to the end, appending ``between`` new learnings after each page."""
    rows: list[dict] = []
    after: str | None = None
    fresh = start
    while True:
        page = client.query_page("learnings", args, after)
        rows += page.rows
        if page.next is None:
            return rows
        after = page.next
        if between:
            client.append_batch([learning(i) for i in range(fresh, fresh + between)])
            fresh += between


def test_pages_in_creation_order_give_every_row_once_while_appends_run(
    big_daemon: DaemonProcess,
) -> None:
    """Following next over 50,000 rows, appending between pages, yields each row once."""
    with Client(big_daemon.socket, spool=False) as client:
        before = client.status_raw()["last_seq"]
        rows = walk(client, QueryArgs(limit=PAGE), between=3, start=before + 10_000_000)
    ids = [row["learning_id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert {f"l{i:06d}" for i in range(ROWS)} <= set(ids)
    # New rows sort after the cursor in creation order, so the walk catches them too.
    assert len(ids) > ROWS


def test_pages_by_key_descending_give_every_existing_row_once_in_order(
    big_daemon: DaemonProcess,
) -> None:
    """order_by the key, newest first: every row present at the start appears once, sorted."""
    with Client(big_daemon.socket, spool=False) as client:
        rows = walk(
            client,
            QueryArgs(limit=PAGE, order="desc", order_by="learning_id"),
            between=2,
            start=20_000_000,
        )
    ids = [row["learning_id"] for row in rows]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids))
    assert {f"l{i:06d}" for i in range(ROWS)} <= set(ids)


def test_pages_by_time_column_within_a_range_are_sorted_and_complete(
    big_daemon: DaemonProcess,
) -> None:
    """since/until keep rows whose time column is in [since, until), in time order, once each."""
    since, until = 1_700_000_020_000, 1_700_000_030_000
    with Client(big_daemon.socket, spool=False) as client:
        rows = walk(client, QueryArgs(limit=777, order_by="recorded_at", since=since, until=until))
    expected = {
        f"l{i:06d}"
        for i in range(ROWS)
        if since <= 1_700_000_000_000 + (i * 7919) % 100_000 < until
    }
    times = [row["recorded_at"] for row in rows]
    assert times == sorted(times)
    assert all(since <= t < until for t in times)
    assert [row["learning_id"] for row in rows if row["learning_id"] in expected] != []
    assert {row["learning_id"] for row in rows} >= expected
    assert len(rows) == len({row["learning_id"] for row in rows})


def test_a_short_answer_has_no_cursor(big_daemon: DaemonProcess) -> None:
    """When every matching row fits in the page, next is null."""
    with Client(big_daemon.socket, spool=False) as client:
        page = client.query_page(
            "learnings", QueryArgs(filter={"learning_id": "l000007"}, limit=10)
        )
    assert [row["learning_id"] for row in page.rows] == ["l000007"]
    assert page.next is None


def _forge(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "not base64 at all!",
        _forge({"a": 1}),
        _forge([1, "0000000000000000", "x", "1; DROP TABLE events"]),
        _forge([1, "0000000000000000", 2**70, 5]),
        _forge([9, "0000000000000000", None, 5]),
        "A" * 20_000,
        "",
    ],
)
def test_a_forged_cursor_is_a_bad_request_and_the_daemon_keeps_serving(
    big_daemon: DaemonProcess, after: str
) -> None:
    """A cursor the daemon did not make is refused with bad_request, never an SQL error."""
    with Client(big_daemon.socket, spool=False) as client:
        with pytest.raises(BadRequest):
            client.query_page("learnings", QueryArgs(limit=5), after)
        assert len(client.query("learnings", limit=5)) == 5


def test_a_cursor_of_another_query_is_refused(big_daemon: DaemonProcess) -> None:
    """A cursor only continues the query it came from (same filter, order and range)."""
    with Client(big_daemon.socket, spool=False) as client:
        first = client.query_page("learnings", QueryArgs(limit=5, order="desc"))
        assert first.next is not None
        with pytest.raises(BadRequest, match="another query"):
            client.query_page("learnings", QueryArgs(limit=5, order="asc"), first.next)
        with pytest.raises(BadRequest, match="another query"):
            client.query_page(
                "learnings", QueryArgs(limit=5, order="desc", filter={"category": "c1"}), first.next
            )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (QueryArgs(order_by="insight"), "order_by must be one of"),
        (QueryArgs(order_by="learning_id", since=5), "since/until apply to a time column"),
        (QueryArgs(since=-1), "since must be"),
        (QueryArgs(limit=10_001), "limit must be"),
    ],
)
def test_bad_paging_params_are_refused_with_the_reason(
    big_daemon: DaemonProcess, args: QueryArgs, message: str
) -> None:
    """order_by outside the key and time columns, a range on a non-time column, bad bounds."""
    with Client(big_daemon.socket, spool=False) as client, pytest.raises(BadRequest, match=message):
        client.query_page("learnings", args)


def test_watch_takes_the_paging_params_and_sends_the_first_page(
    big_daemon: DaemonProcess,
) -> None:
    """watch with order_by/order/limit answers the same first page as query."""
    with Client(big_daemon.socket, spool=False) as client:
        expected = client.query("learnings", limit=5, order="desc", order_by="learning_id")
        with client.watch("learnings", limit=5, order="desc", order_by="learning_id") as rows:
            first = next(iter(rows))
    assert first == expected
    assert [row["learning_id"] for row in first] == sorted(
        (row["learning_id"] for row in first), reverse=True
    )
