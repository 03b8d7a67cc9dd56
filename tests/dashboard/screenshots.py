"""``make screenshots``: PNGs of the dashboard's main pages from the demo scenario, into docs/img/.

``python -m tests.dashboard.screenshots [DIR]``: writes the demo history into
a fresh data dir, starts a real daemon and dashboard on it, and has headless
Chromium capture each page.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.support.daemon import start_daemon
from tests.support.dashboard import chromium_launch_args, running_dashboard
from tests.support.scenario import demo_events, write_log

#: (file name, page hash, a selector that shows the page has its data)
PAGES = [
    ("builds.png", "#/builds", "table[data-view=builds] tbody tr"),
    ("build-graph.png", "#/build/b-1045", "[data-testid=task-graph] svg"),
    ("build-failed.png", "#/build/b-1042", "[data-testid=task-graph] svg"),
    ("executions.png", "#/executions", "[data-chart] rect.bar"),
    ("patterns.png", "#/patterns", "table[data-view=patterns] tbody tr"),
    ("views.png", "#/view/tasks", "table[data-view=tasks] tbody tr"),
    ("sync.png", "#/sync", "[data-field=state]"),
]


def capture(page: Page, base: str, out: Path) -> None:
    for name, fragment, ready in PAGES:
        page.goto(f"{base}/{fragment}")
        page.wait_for_selector(ready, timeout=10_000)
        time.sleep(0.2)
        page.screenshot(path=str(out / name), full_page=True)
        print(f"wrote {out / name}")


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/img")
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="atlasd-shots-", dir="/tmp"))
    try:
        write_log(root / "data", demo_events(int(time.time() * 1000)))
        daemon = start_daemon(root)
        try:
            with running_dashboard(daemon) as dash, sync_playwright() as p:
                browser = p.chromium.launch(**chromium_launch_args())
                page = browser.new_page(viewport={"width": 1280, "height": 760})
                page.goto(dash.url)  # the token becomes the session cookie
                capture(page, dash.base, out)
                browser.close()
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
