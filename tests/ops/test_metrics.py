"""atlasd metrics: the daemon's counters in Prometheus text format, parsed back."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.daemon.conftest import NO_SPOOL, event
from tests.support.daemon import DaemonProcess, clean_env, running_daemon

ID = "01900000-0000-7000-8000-0000000000a1"


def metrics(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlasd", "metrics", "--socket", str(d.socket), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as (name, sorted labels) -> value, through Prometheus' own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_appends_are_counted_by_outcome_with_commit_latency() -> None:
    """Appended, duplicate and refused events each have their count; every group commit
    is in the latency histogram."""
    with running_daemon(args=NO_SPOOL) as d:
        for i in range(3):
            assert d.request("append", **event(i))["ok"]
        assert d.request("append", event_id=ID, **event(9))["ok"]
        assert d.request("append", event_id=ID, **event(9))["result"]["duplicate"]
        refused = d.request("append", stream="s", type="bad type!", data={})
        assert refused["error"]["code"] == "invalid_value"
        (d.data_dir / "spool").mkdir(exist_ok=True)
        (d.data_dir / "spool" / "waiting.ndjson").write_text("{}\n")
        done = metrics(d)
    assert done.returncode == 0, done.stderr
    found = samples(done.stdout)
    assert found[("atlasd_appends_total", (("outcome", "appended"),))] == 4
    assert found[("atlasd_appends_total", (("outcome", "duplicate"),))] == 1
    assert found[("atlasd_appends_total", (("outcome", "invalid_value"),))] == 1
    groups = found[("atlasd_groups_total", ())]
    assert groups >= 1
    assert found[("atlasd_commit_seconds_count", ())] == groups
    assert found[("atlasd_commit_seconds_bucket", (("le", "+Inf"),))] == groups
    assert found[("atlasd_events", ())] == 4
    assert found[("atlasd_sync_state", (("state", "disabled"),))] == 1
    assert found[("atlasd_sync_state", (("state", "idle"),))] == 0
    assert found[("atlasd_spool_files", (("state", "waiting"),))] == 1
    assert found[("atlasd_db_bytes", ())] > 0


def test_textfile_is_written_whole_and_readable_by_the_collector(tmp_path: Path) -> None:
    """--textfile replaces the file atomically, mode 0644, with no temporary left."""
    target = tmp_path / "atlasd.prom"
    target.write_text("stale\n")
    with running_daemon(args=NO_SPOOL) as d:
        done = metrics(d, "--textfile", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "atlasd_events 0.0" in target.read_text()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlasd.prom"]


def test_an_unreachable_daemon_exits_3(tmp_path: Path) -> None:
    """No daemon: exit 3 with a one-line message, nothing on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "atlasd", "metrics", "--socket", str(tmp_path / "none.sock")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
