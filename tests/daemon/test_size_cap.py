"""The size cap in status: an alert well before appends are refused, one rule with doctor."""

from __future__ import annotations

from pathlib import Path

from atlasd.eventlog.capacity import CAP_FAIL, CAP_WARN, cap_state
from tests.daemon.conftest import toml_config
from tests.support.daemon import running_daemon


def test_status_alerts_near_the_cap_and_a_refusal_names_it(short_dir: Path) -> None:
    """At 75% of max_db_bytes status says alert; at the cap the refusal names max_db_bytes."""
    cap = 600_000
    config = toml_config(short_dir / "c.toml", max_db_bytes=cap, spool_enabled=False)
    with running_daemon(args=["--config", str(config)]) as daemon, daemon.connect() as conn:
        first = conn.request("status")["result"]["cap"]
        assert first["bytes"] == cap
        assert first["alert"] is (first["used"] >= CAP_WARN * cap)
        refusal = None
        for i in range(500):
            data = {"build_id": "b", "task_id": f"t{i}", "status": "pending", "pad": "x" * 3000}
            answer = conn.request("append", stream="build:b", type="TaskLogged", data=data)
            if not answer["ok"]:
                refusal = answer["error"]
                break
            state = conn.request("status")["result"]["cap"]
            if state["share"] >= CAP_WARN:
                assert state["alert"] is True
        assert refusal is not None
        assert refusal["code"] == "unavailable"
        assert f"size cap of {cap} bytes (max_db_bytes)" in refusal["message"]
        assert conn.request("status")["result"]["cap"]["level"] in ("warn", "fail")


def test_the_cap_rule_has_three_levels() -> None:
    """Below the warning share ok, from it warn, from the failure share fail."""
    assert cap_state(int(CAP_WARN * 1000) - 1, 1000).level == "ok"
    assert cap_state(int(CAP_WARN * 1000), 1000).alert is True
    assert cap_state(int(CAP_FAIL * 1000), 1000).level == "fail"
