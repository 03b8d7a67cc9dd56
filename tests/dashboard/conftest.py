"""Fixtures for the dashboard: a real daemon with the demo history, the real dashboard process,
and one headless Chromium per session (pytest-playwright's ``browser``, launched from
Debian's ``/usr/bin/chromium``)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.daemon import DaemonProcess, start_daemon
from tests.support.dashboard import (
    CHROMIUM,
    DashboardProcess,
    chromium_launch_args,
    running_dashboard,
)
from tests.support.scenario import demo_events, write_log

NO_SPOOL = ("--no-spool",)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium (Playwright downloads no browser here)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does it)")
    return chromium_launch_args()


@pytest.fixture(scope="module")
def demo_daemon() -> Iterator[DaemonProcess]:
    """A daemon on a data dir holding the demo history; stopped (exit 0 checked) after."""
    root = Path(tempfile.mkdtemp(prefix="atlasd-d-", dir="/tmp"))
    write_log(root / "data", demo_events(int(time.time() * 1000)))
    daemon = start_daemon(root, args=NO_SPOOL)
    try:
        yield daemon
    finally:
        code = daemon.stop()
        log = daemon.log()
        shutil.rmtree(root, ignore_errors=True)
    assert code == 0, log


@pytest.fixture(scope="module")
def dashboard(demo_daemon: DaemonProcess) -> Iterator[DashboardProcess]:
    """``atlasd dashboard`` on the demo daemon."""
    with running_dashboard(demo_daemon) as dash:
        yield dash


@pytest.fixture
def signed_in(page: Page, dashboard: DashboardProcess) -> Page:
    """A page that opened the printed URL, so it holds the session cookie."""
    response = page.goto(dashboard.url)
    assert response is not None
    assert response.status == 200
    return page


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookie), for tests that bring their own dashboard."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


_BROWSER_FIXTURES = {"page", "browser", "context", "open_page", "signed_in"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that drive the browser are marked ``browser`` and run after every other test.

    Playwright's sync API keeps an event loop running in the main thread from
    its first use to the end of the session; the asyncio tests cannot run
    beside it, so they go first.
    """
    for item in items:
        if _BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
