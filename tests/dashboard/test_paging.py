"""Bounded pages of any view: the pager on a real daemon, and a 50,000-row view in a browser."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, Response, expect

from atlasd.client import AsyncClient
from atlasd.dashboard import DaemonLink, PageQuery
from atlasd.dashboard import Page as Page_
from tests.support.daemon import DaemonProcess, start_daemon
from tests.support.dashboard import DashboardProcess, running_dashboard
from tests.support.scenario import append_all, demo_events

BIG = 50_000
T = TypeVar("T")


def _with_link(daemon: DaemonProcess, body: Callable[[DaemonLink], Awaitable[T]]) -> T:
    """Run ``body`` with a link to ``daemon`` on an event loop of its own thread.

    The browser tests' Playwright keeps an event loop running in this thread.
    """
    out: list[T] = []
    failures: list[BaseException] = []

    async def main() -> None:
        async with AsyncClient(daemon.socket, spool=False) as client:
            out.append(await body(DaemonLink(client)))

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]
    return out[0]


def _patterns(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        pattern_id = f"p-{i:06d}"
        yield {
            "stream": f"pattern:{pattern_id}",
            "type": "PatternStored",
            "data": {
                "pattern_id": pattern_id,
                "name": f"Pattern {i}",
                "description": "d",
                "code": "c",
                "language": "python" if i % 2 else "sql",
                "tags": ["t"],
            },
        }


def test_a_page_is_bounded_and_following_next_yields_each_row_once(
    demo_daemon: DaemonProcess,
) -> None:
    """A page holds at most ``limit`` rows; with cursors, all pages give every row exactly once."""

    async def pages(link: DaemonLink) -> list[Page_]:
        page = await link.page(PageQuery(view="tasks", limit=10, order="asc"))
        got = [page]
        while page.next is not None:
            page = await link.page(PageQuery(view="tasks", limit=10, order="asc", after=page.next))
            got.append(page)
        return got

    got = _with_link(demo_daemon, pages)
    assert len(got[0].rows) == 10
    assert got[0].more
    if got[0].paging == "limit":
        assert got[0].next is None
        assert len(got) == 1
        return
    seen = [(r["build_id"], r["task_id"]) for p in got for r in p.rows]
    assert all(len(p.rows) <= 10 for p in got)
    assert len(seen) == len(set(seen)) == 42


def test_order_by_sorts_the_page_whether_or_not_the_daemon_knows_it(
    demo_daemon: DaemonProcess,
) -> None:
    """Asked for ``order_by``, the page comes back sorted by that column, either way."""

    async def sorted_page(link: DaemonLink) -> tuple[Page_, bool | None]:
        page = await link.page(PageQuery(view="builds", limit=50, order="asc", order_by="prd_name"))
        return page, link.cursor_paging

    page, cursor_paging = _with_link(demo_daemon, sorted_page)
    names = [r["prd_name"] for r in page.rows]
    assert len(names) == 6
    assert names == sorted(names)
    assert cursor_paging is (page.paging == "cursor")


def test_the_execution_window_keeps_only_rows_inside_it(demo_daemon: DaemonProcess) -> None:
    """``since``/``until`` keep rows whose time column falls in [since, until)."""
    events = demo_events(int(time.time() * 1000))
    middle = events[len(events) // 2][0]

    async def both(link: DaemonLink) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        window = PageQuery(view="executions", order_by="recorded_at", since=middle)
        rows, _ = await link.collect(window, 1000)
        everything, _ = await link.collect(PageQuery(view="executions"), 1000)
        return rows, everything

    rows, everything = _with_link(demo_daemon, both)
    assert 0 < len(rows) < len(everything)
    stamps = [r["recorded_at"] for r in rows]
    assert min(stamps) >= middle


@pytest.fixture(scope="module")
def big_daemon() -> Iterator[DaemonProcess]:
    """A daemon whose patterns view holds 50,000 rows."""
    daemon = start_daemon(args=("--no-spool",))
    try:
        assert append_all(daemon, _patterns(BIG)) == BIG
        yield daemon
    finally:
        code = daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)
    assert code == 0


@pytest.fixture(scope="module")
def big_dashboard(big_daemon: DaemonProcess) -> Iterator[DashboardProcess]:
    with running_dashboard(big_daemon) as dash:
        yield dash


@pytest.mark.browser
def test_a_view_of_50000_rows_pages_without_loading_it_all(
    page: Page, big_dashboard: DashboardProcess
) -> None:
    """The page asks for one page of rows at a time and shows that page only."""

    def is_page(response: Response) -> bool:
        return "/api/query/patterns" in response.url

    page.goto(big_dashboard.url)
    with page.expect_response(is_page) as answer:
        page.goto(f"{big_dashboard.base}/#/view/patterns")
    body = answer.value.body()
    first = json.loads(body)
    assert len(first["rows"]) == 50
    assert len(body) < 64 * 1024
    assert first["more"] is True
    rows = page.locator("table[data-view=patterns] tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator("[data-testid=page-summary]")).to_have_text("rows 1–50")
    # Newest first: the last pattern appended heads the first page.
    expect(rows.first).to_contain_text(f"p-{BIG - 1:06d}")
    if first["paging"] == "cursor":
        with page.expect_response(is_page) as second:
            page.get_by_role("button", name="Next →").click()
        assert len(json.loads(second.value.body())["rows"]) == 50
        expect(page.locator("[data-testid=page-summary]")).to_have_text("rows 51–100")
        expect(rows.first).to_contain_text(f"p-{BIG - 51:06d}")
    else:
        expect(page.locator(".pager")).to_contain_text("pages no further")
        expect(page.get_by_role("button", name="Next →")).to_be_disabled()
