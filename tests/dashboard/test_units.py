"""The dashboard's pure parts: allowed Host values, execution stats, page sorting, watch specs."""

from __future__ import annotations

import pytest

from atlasd.dashboard.aggregate import group_executions
from atlasd.dashboard.daemon_link import sort_rows
from atlasd.dashboard.live import MAX_WATCH_LIMIT, MAX_WATCHES, parse_specs
from atlasd.dashboard.security import allowed_hosts, cookie_name
from atlasd.errors import BadRequest


def test_a_loopback_dashboard_also_answers_to_localhost() -> None:
    """127.0.0.1 and localhost with the port; nothing else, no other port."""
    assert allowed_hosts("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000"}
    assert allowed_hosts("::1", 81) == {"[::1]:81", "localhost:81", "127.0.0.1:81"}
    assert allowed_hosts("localhost", 82) == {"localhost:82", "127.0.0.1:82", "[::1]:82"}


def test_a_dashboard_on_another_address_answers_to_that_address_only() -> None:
    """No localhost alias when the bound address is not a loopback one."""
    assert allowed_hosts("192.0.2.7", 8080) == {"192.0.2.7:8080"}


def test_each_port_has_its_own_cookie() -> None:
    """Cookies are per host: the name carries the port."""
    assert cookie_name(8000) != cookie_name(8001)


def test_executions_are_grouped_with_mean_duration_and_gate_pass_rate() -> None:
    """Means over integer durations, pass rate over boolean gates, most executions first."""
    rows = [
        {"agent": "coder", "duration_ms": 100, "gates_passed": True, "error": None},
        {"agent": "coder", "duration_ms": 300, "gates_passed": False, "error": "boom"},
        {"agent": "coder", "duration_ms": "x", "gates_passed": "yes", "error": None},
        {"agent": "tester", "duration_ms": 50, "gates_passed": True, "error": None},
        {"agent": None, "duration_ms": None, "gates_passed": None, "error": None},
    ]
    coder, first_of_one, second_of_one = group_executions(rows, "agent")
    assert (coder.name, coder.executions, coder.failed) == ("coder", 3, 1)
    assert coder.mean_duration_ms == 200
    assert coder.max_duration_ms == 300
    assert coder.gate_pass_rate == 0.5
    assert {first_of_one.name, second_of_one.name} == {"tester", "(none)"}
    none = next(g for g in (first_of_one, second_of_one) if g.name == "(none)")
    assert (none.mean_duration_ms, none.gate_pass_rate) == (None, None)


def test_a_page_is_sorted_with_missing_values_last_either_way() -> None:
    """Numbers by value, then text; rows without the column stay at the end."""
    rows = [{"v": 3}, {"v": None}, {"v": "b"}, {"v": 1}, {}, {"v": "a"}]
    up = [r.get("v") for r in sort_rows(rows, "v", descending=False)]
    down = [r.get("v") for r in sort_rows(rows, "v", descending=True)]
    assert up[:4] == [1, 3, "a", "b"]
    assert down[:4] == ["b", "a", 3, 1]
    assert up[4:] == down[4:] == [None, None]


def test_watch_specs_are_bounded_and_strict() -> None:
    """Too many queries, unknown fields or bad JSON are refused; limits are clamped."""
    (spec,) = parse_specs('[{"view": "builds", "limit": 999999}]')
    assert spec.limit == MAX_WATCH_LIMIT
    too_many = "[" + ",".join(['{"view": "builds"}'] * (MAX_WATCHES + 1)) + "]"
    for bad in (too_many, '[{"view": "builds", "after": "x"}]', "not json", '{"view": 1}'):
        with pytest.raises(BadRequest):
            parse_specs(bad)
