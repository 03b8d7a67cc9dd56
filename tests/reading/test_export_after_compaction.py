"""Export and import across archived events, through real daemons and the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.reading.test_export_import import ATLASD, _generated, _run, _views
from tests.support.daemon import DaemonProcess, clean_env, running_daemon, start_daemon

EVENTS = 3_000


def _compact(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATLASD, "compact", "--data-dir", str(data_dir), "--older-than-days", "0"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )


def test_export_after_compaction_equals_export_before_and_import_restores_it(
    tmp_path: Path,
) -> None:
    """A daemon serves archived events in reads, and export --data-dir reads them with
    the daemon stopped: both exports are byte for byte the one from before compaction,
    and importing it into a fresh data dir gives the same views."""
    before, after = tmp_path / "before.ndjson", tmp_path / "after.ndjson"
    source: DaemonProcess = start_daemon()
    try:
        with source.connect() as conn:
            for start in range(0, EVENTS, 500):
                batch = [_generated(i) for i in range(start, start + 500)]
                assert conn.request("append_batch", events=batch)["ok"]
        _run("export", "-o", str(before), daemon=source)
        views = _views(source)
        assert source.stop() == 0
        refused = _compact(source.data_dir)
        assert refused.returncode == 0, refused.stderr
        assert "archived 3,000 events" in refused.stdout
        offline = subprocess.run(
            [ATLASD, "export", "--data-dir", str(source.data_dir)],
            capture_output=True,
            env=clean_env(),
            timeout=300,
        )
        assert offline.returncode == 0, offline.stderr
        assert offline.stdout == before.read_bytes()
        source.start()
        _run("export", "-o", str(after), daemon=source)
        assert _views(source) == views
    finally:
        source.stop()
        shutil.rmtree(source.root, ignore_errors=True)
    assert after.read_bytes() == before.read_bytes()
    with running_daemon() as target:
        _run("import", str(after), daemon=target)
        assert _views(target) == views


def test_compact_refuses_while_the_daemon_runs_and_when_retention_is_off() -> None:
    """`atlasd compact` exits 1 next to a running daemon and 2 without a retention age."""
    with running_daemon() as daemon:
        busy = _compact(daemon.data_dir)
        assert busy.returncode == 1
        assert "another atlasd" in busy.stderr
        off = subprocess.run(
            [ATLASD, "compact", "--data-dir", str(daemon.data_dir)],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert off.returncode == 2
        assert "retention is off" in off.stderr
