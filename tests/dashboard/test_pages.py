"""The dashboard in a real browser, against a real daemon and the real dashboard process."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.support.daemon import DaemonProcess
from tests.support.dashboard import DashboardProcess

pytestmark = pytest.mark.browser


def _append(daemon: DaemonProcess, stream: str, type_: str, **data: object) -> None:
    answer = daemon.request("append", stream=stream, type=type_, data=data)
    assert answer["ok"], answer


def test_the_builds_page_lists_the_scenarios_builds_newest_first(
    signed_in: Page, dashboard: DashboardProcess
) -> None:
    """Every demo build is listed, newest first, with its status and progress."""
    signed_in.goto(f"{dashboard.base}/#/builds")
    rows = signed_in.locator("table[data-view=builds] tbody tr")
    expect(rows).to_have_count(6)
    ids = rows.locator("td:first-child").all_inner_texts()
    assert ids == ["b-1046", "b-1045", "b-1044", "b-1043", "b-1042", "b-1041"]
    failed = rows.filter(has_text="b-1042")
    expect(failed.locator(".pill")).to_have_text("failed")
    expect(failed).to_contain_text("2/1/7")


def test_the_status_filter_keeps_only_matching_builds(
    signed_in: Page, dashboard: DashboardProcess
) -> None:
    """Filtering by status asks the daemon for those builds only."""
    signed_in.goto(f"{dashboard.base}/#/builds?status=running")
    rows = signed_in.locator("table[data-view=builds] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator(".pill")).to_have_text(["running", "running"])


def test_a_failed_task_shows_its_error_in_the_graph_and_the_table(
    signed_in: Page, dashboard: DashboardProcess
) -> None:
    """The failed build's failed task carries its error, attempts and dependencies."""
    signed_in.goto(f"{dashboard.base}/#/build/b-1042")
    node = signed_in.locator("[data-testid=task-graph] g.node[data-task=t-3]")
    expect(node).to_have_class("node n-failed")
    expect(node).to_contain_text("search index timed out")
    row = signed_in.locator("table[data-view=tasks] tr[data-task=t-3]")
    expect(row).to_contain_text("search index timed out after 30 s (shard 3 unreachable)")
    expect(row).to_contain_text("failed")
    # Dependencies are drawn: t-5 depends on t-2 and t-3, t-6 on t-3 and t-4, ...
    assert signed_in.locator("[data-testid=task-graph] path.edge").count() == 9
    expect(signed_in.locator(".errorbox")).to_contain_text("task t-3 failed after 2 attempts")


def test_a_task_status_change_appears_within_a_second_without_a_reload(
    signed_in: Page, dashboard: DashboardProcess, demo_daemon: DaemonProcess
) -> None:
    """Appending TaskStatusChanged updates the open build page live (< 1 s, same document)."""
    stream = "build:b-live"
    _append(demo_daemon, stream, "BuildStarted", build_id="b-live", prd_id="p", prd_name="Live")
    _append(
        demo_daemon,
        stream,
        "TaskLogged",
        build_id="b-live",
        task_id="t-1",
        title="Live task",
        agent="coder",
        status="pending",
        dependencies=[],
        phase=1,
    )
    signed_in.goto(f"{dashboard.base}/#/build/b-live")
    cell = signed_in.locator("table[data-view=tasks] tr[data-task=t-1] .pill")
    expect(cell).to_have_text("pending")
    expect(signed_in.locator("#live.on")).to_be_visible()
    signed_in.evaluate("window.__sameDocument = true")
    for status in ("running", "failed"):
        started = time.monotonic()
        extra = {"error": "gate: lint failed"} if status == "failed" else {}
        _append(
            demo_daemon,
            stream,
            "TaskStatusChanged",
            build_id="b-live",
            task_id="t-1",
            status=status,
            **extra,
        )
        expect(cell).to_have_text(status, timeout=1000)
        assert time.monotonic() - started < 1.0
    expect(signed_in.locator("tr[data-task=t-1]")).to_contain_text("gate: lint failed")
    assert signed_in.evaluate("window.__sameDocument") is True


def test_the_execution_charts_render_with_data(
    signed_in: Page, dashboard: DashboardProcess
) -> None:
    """Four charts (duration and gate pass rate, by agent and by model) with one bar per group."""
    signed_in.goto(f"{dashboard.base}/#/executions")
    charts = signed_in.locator("[data-chart]")
    expect(charts).to_have_count(4)
    by_agent = signed_in.locator("[data-chart='Mean duration by agent']")
    expect(by_agent.locator("rect.bar")).to_have_count(4)
    for name in ("planner", "coder", "reviewer", "tester"):
        expect(by_agent).to_contain_text(name)
    widths = [
        float(w or 0)
        for w in signed_in.locator("[data-chart] rect.bar").evaluate_all(
            "bars => bars.map(b => b.getAttribute('width'))"
        )
    ]
    assert widths
    assert all(w > 0 for w in widths)
    rates = signed_in.locator("[data-chart='Gate pass rate by model']")
    expect(rates.locator("rect.bar")).to_have_count(3)
    expect(rates).to_contain_text("%")
    # A range with nothing in it shows no bars.
    signed_in.goto(f"{dashboard.base}/#/executions?range=1h")
    expect(signed_in.locator(".summary")).to_contain_text("executions")


def test_every_view_the_daemon_reports_is_listed_and_renders_from_its_rows(
    signed_in: Page, dashboard: DashboardProcess, demo_daemon: DaemonProcess
) -> None:
    """The Views page lists every projection of ``status``; a view's columns are its rows' keys."""
    names = [p["name"] for p in demo_daemon.request("status")["result"]["projections"]]
    signed_in.goto(f"{dashboard.base}/#/views")
    links = signed_in.locator("[data-view-link]")
    expect(links).to_have_count(len(names))
    assert sorted(links.all_inner_texts()) == sorted(names)
    row = demo_daemon.request("query", view="learnings", limit=1)["result"]["rows"][0]
    signed_in.goto(f"{dashboard.base}/#/view/learnings")
    header_cells = signed_in.locator("table[data-view=learnings] th")
    expect(header_cells).to_have_count(len(row))
    headers = header_cells.all_inner_texts()
    assert [h.strip().lower() for h in headers] == list(row)


def test_sorting_a_view_by_a_column_orders_its_rows(
    signed_in: Page, dashboard: DashboardProcess
) -> None:
    """Clicking a column header sorts the rows by it, then the other way."""
    signed_in.goto(f"{dashboard.base}/#/view/patterns")
    table = signed_in.locator("table[data-view=patterns]")
    expect(table.locator("tbody tr")).to_have_count(5)
    names = [
        "Feature flag guard",
        "Form validation hook",
        "Idempotent upsert",
        "Paged query cursor",
        "Retry with backoff",
    ]
    cells = signed_in.locator("table[data-view=patterns] tbody tr td:nth-child(2)")
    # Newest first by default: not sorted by name.
    expect(cells).not_to_have_text(names)
    table.locator("th[data-column=name]").click()
    expect(cells).to_have_text(names)
    expect(table.locator("th[data-column=name] .arrow")).to_have_text("▲")
    signed_in.locator("table[data-view=patterns] th[data-column=name]").click()
    expect(cells).to_have_text(names[::-1])


def test_patterns_are_searched_by_language_and_tags(
    signed_in: Page, dashboard: DashboardProcess
) -> None:
    """The language and tags boxes filter the patterns view (tags: all given)."""
    signed_in.goto(f"{dashboard.base}/#/patterns?language=python&tags=database")
    rows = signed_in.locator("table[data-view=patterns] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Paged query cursor")
