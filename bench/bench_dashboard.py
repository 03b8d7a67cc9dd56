"""Dashboard benchmark: measured in headless Chromium against real daemon and dashboard processes.

Figures, each beside its baseline from the same run:
- the builds page's paint time (navigation start to the first page of data
  on screen, the page's own ``atlasd:painted`` mark) on a log of 10,000
  builds vs. a log of 10 builds. Target: <= 1.5x (the page asks for one
  bounded page, never the whole view).
- the daemon's append rate (8 connections, each pipelining 16 acknowledged
  single appends of ``TaskStatusChanged`` to the builds on screen) with 5
  dashboards open on the builds page, each following it live, vs. with
  none, alternating. Target: >= 0.9x.

``python -m bench.bench_dashboard [--quick]``; a missed target prints
"TARGET MISSED" and makes ``main`` return 1.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator

from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.daemon import DaemonProcess, start_daemon
from tests.support.dashboard import chromium_launch_args, running_dashboard
from tests.support.scenario import append_all, many_builds

PAINT_RATIO_TARGET = 1.5
APPEND_RATIO_TARGET = 0.9
SMALL_LOG = 10
BIG_LOG = 10_000
DASHBOARDS = 5
WRITERS = 8
#: Appends each writer sends before reading their answers.
WINDOW = 16
#: Builds in the log of the append-rate measurement.
LIVE_LOG = 100


@contextlib.contextmanager
def _daemon(builds: int) -> Iterator[DaemonProcess]:
    daemon = start_daemon(args=("--no-spool",))
    try:
        append_all(daemon, many_builds(builds))
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)


def _paint_once(page: Page, base: str, rows: int) -> float:
    page.goto("about:blank")
    page.goto(f"{base}/#/builds")
    page.wait_for_function("() => performance.getEntriesByName('atlasd:painted').length > 0")
    shown = page.locator("table[data-view=builds] tbody tr").count()
    assert shown == rows, shown
    painted: float = page.evaluate(
        "() => performance.getEntriesByName('atlasd:painted')[0].startTime"
    )
    return painted


def _paint_ms(browser: Browser, runs: int) -> tuple[float, float]:
    """Median paint time of the builds page on the small and the big log, loads alternating."""
    with (
        _daemon(SMALL_LOG) as small_daemon,
        _daemon(BIG_LOG) as big_daemon,
        running_dashboard(small_daemon) as small,
        running_dashboard(big_daemon) as big,
    ):
        context = browser.new_context()
        small_page, big_page = context.new_page(), context.new_page()
        small_page.goto(small.url)
        big_page.goto(big.url)
        times: dict[str, list[float]] = {"small": [], "big": []}
        for _ in range(runs + 1):  # the first round warms caches
            times["small"].append(_paint_once(small_page, small.base, SMALL_LOG))
            times["big"].append(_paint_once(big_page, big.base, 50))
        context.close()
    return statistics.median(times["small"][1:]), statistics.median(times["big"][1:])


def _append_rate(daemon: DaemonProcess, seconds: float) -> float:
    """Acknowledged appends per second: ``WRITERS`` connections, each pipelining ``WINDOW``."""
    stop = time.monotonic() + seconds
    counts = [0] * WRITERS

    def writer(n: int) -> None:
        # The newest builds: the ones on the open pages, so every append changes what they show.
        build_id = f"b-{LIVE_LOG - WRITERS + n:06d}"
        requests = [
            json.dumps(
                {
                    "op": "append",
                    "stream": f"build:{build_id}",
                    "type": "TaskStatusChanged",
                    "data": {"build_id": build_id, "task_id": "t-2", "status": status},
                }
            ).encode()
            + b"\n"
            for status in ("running", "done") * (WINDOW // 2)
        ]
        burst = b"".join(requests)
        with daemon.connect() as conn:
            done = 0
            while time.monotonic() < stop:
                conn.send(burst)
                for _ in requests:
                    answer = conn.recv()
                    assert answer.get("ok"), answer
                done += len(requests)
            counts[n] = done

    started = time.monotonic()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def _append_rates(browser: Browser, seconds: float, rounds: int) -> tuple[float, float, float]:
    """Append rates with no dashboard open and with ``DASHBOARDS`` open, in alternating rounds.

    Returns the median rate of each, and the median of the rounds' paired ratios
    (each round's "five" against its "none", the order swapped every round),
    which the other load on a shared machine disturbs least.
    """
    with _daemon(LIVE_LOG) as daemon, contextlib.ExitStack() as stack:
        dashboards = [stack.enter_context(running_dashboard(daemon)) for _ in range(DASHBOARDS)]
        context = browser.new_context()
        pages = [context.new_page() for _ in dashboards]
        for page, dash in zip(pages, dashboards, strict=True):
            page.goto(dash.url)
        none: list[float] = []
        five: list[float] = []

        def close_pages() -> None:
            # A dashboard with no page open holds no watch: "none" is blank pages.
            for page in pages:
                page.goto("about:blank")
            none.append(_append_rate(daemon, seconds))

        def open_pages() -> None:
            for page, dash in zip(pages, dashboards, strict=True):
                page.goto(f"{dash.base}/#/builds")
            for page in pages:
                page.wait_for_selector("#live[data-ready]")
            five.append(_append_rate(daemon, seconds))

        # ABBA: the log grows as the rounds go, so neither arm always runs second.
        for n in range(rounds):
            for measure in (close_pages, open_pages) if n % 2 == 0 else (open_pages, close_pages):
                measure()
        context.close()
    ratios = [f / n for n, f in zip(none, five, strict=True)]
    return statistics.median(none), statistics.median(five), statistics.median(ratios)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_args())
        try:
            runs = 5 if quick else 15
            small, big = _paint_ms(browser, runs)
            none, five, append_ratio = _append_rates(browser, 2.0, 4 if quick else 8)
        finally:
            browser.close()
    missed = False
    paint_ratio = big / small
    print(f"builds page paint, {SMALL_LOG}-build log (baseline):  {small:8.1f} ms")
    print(
        f"builds page paint, {BIG_LOG}-build log:             {big:8.1f} ms"
        f"   ratio {paint_ratio:.2f}x (target <= {PAINT_RATIO_TARGET}x)"
    )
    if paint_ratio > PAINT_RATIO_TARGET:
        print("TARGET MISSED: the builds page paints too slowly on a large log")
        missed = True
    print(f"append rate, no dashboard (baseline):       {none:8.0f} appends/s (median)")
    print(
        f"append rate, {DASHBOARDS} dashboards open and live:     {five:8.0f} appends/s (median)"
        f"   paired ratio {append_ratio:.2f}x (target >= {APPEND_RATIO_TARGET}x)"
    )
    if append_ratio < APPEND_RATIO_TARGET:
        print("TARGET MISSED: open dashboards slow the daemon's appends")
        missed = True
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
