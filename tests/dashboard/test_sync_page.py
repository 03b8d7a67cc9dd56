"""Sync health in the browser: the quarantine with its reasons, and the re-queue button."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.daemon import DaemonProcess, start_daemon
from tests.support.dashboard import running_dashboard
from tests.sync.ingest_server import IngestServer

pytestmark = pytest.mark.browser


def _sync(daemon: DaemonProcess) -> dict[str, Any]:
    answer = daemon.request("status")
    assert answer["ok"], answer
    sync: dict[str, Any] = answer["result"]["sync"]
    return sync


def _until(daemon: DaemonProcess, check: Any, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        sync = _sync(daemon)
        if check(sync):
            return sync
        assert time.monotonic() < deadline, f"sync never got there: {sync}\n{daemon.log()}"
        time.sleep(0.05)


@pytest.fixture
def syncing_daemon() -> Iterator[tuple[DaemonProcess, IngestServer]]:
    with IngestServer() as server:
        daemon = start_daemon(
            args=("--no-spool",),
            env={"ATLASD_INGEST_URL": server.ingest_url, "ATLASD_INGEST_TOKEN": "test-token"},
        )
        try:
            yield daemon, server
        finally:
            code = daemon.stop()
            shutil.rmtree(daemon.root, ignore_errors=True)
        assert code == 0


def test_the_quarantine_shows_its_reasons_and_the_button_requeues_it(
    page: Page, syncing_daemon: tuple[DaemonProcess, IngestServer]
) -> None:
    """A refused event is listed with the remote's reason; re-queue sends it again."""
    daemon, server = syncing_daemon
    poison = str(uuid.uuid4())
    server.state.reject_ids.add(poison)
    answer = daemon.request("append", stream="note:p", type="Note", data={"n": 1}, event_id=poison)
    assert answer["ok"], answer
    _until(daemon, lambda s: s["rejected"] == 1 and s["pending"] == 0)
    with running_dashboard(daemon) as dash:
        page.goto(dash.url)
        page.goto(f"{dash.base}/#/sync")
        quarantine = page.locator("table[data-view=quarantine] tbody tr")
        expect(quarantine).to_have_count(1)
        expect(quarantine).to_contain_text(poison)
        expect(quarantine).to_contain_text("refused by rule")
        expect(page.locator("[data-field=state]")).to_contain_text("idle")
        server.state.reject_ids.clear()
        page.get_by_role("button", name="Re-queue quarantine").click()
        expect(page.locator("#requeue-result")).to_have_text("Re-queued 1 event(s).")
        _until(daemon, lambda s: s["rejected"] == 0)
        expect(page.locator("text=Nothing is quarantined.")).to_be_visible()
    assert poison in server.state.events
