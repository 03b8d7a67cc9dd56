"""Sync inside real daemon subprocesses: crashes, stops, two origins, ``atlasd sync``."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlasd.client import Client
from atlasd.events import NewEvent
from tests.support.convex_double import ConvexDouble
from tests.support.daemon import DaemonProcess, running_daemon, start_daemon
from tests.sync.proxy_thread import ProxyThread
from tests.sync.test_faults import _poisoner, _unstorable
from tests.sync.workload import VIEW_KEYS, domain_events, sorted_rows

# Longest a test waits for a daemon to finish syncing, in seconds.
SETTLE_S = 60.0

_SYNC_SETTINGS = """
[sync]
batch_max_events = 16
linger_ms = 5
interval_s = 1.0
backoff_base_s = 0.05
backoff_cap_s = 0.3
auth_retry_s = 0.3
timeout_s = 5.0
"""


@pytest.fixture
def config_file(short_dir: Path) -> Path:
    path = short_dir / "atlasd.toml"
    path.write_text(_SYNC_SETTINGS)
    return path


def _env(url: str, token: str) -> dict[str, str]:
    return {"ATLASD_INGEST_URL": url, "ATLASD_INGEST_TOKEN": token}


def _append(daemon: DaemonProcess, events: list[NewEvent]) -> None:
    with Client(daemon.socket, spool=False) as client:
        client.append_batch(events)


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    response = daemon.request("status")
    assert response["ok"], response
    result: dict[str, Any] = response["result"]
    return result


def _wait_synced(daemon: DaemonProcess, timeout: float = SETTLE_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        sync: dict[str, Any] = _status(daemon)["sync"]
        if sync["pending"] == 0 and sync["state"] == "idle":
            return sync
        if time.monotonic() > deadline:
            raise AssertionError(f"daemon did not sync in {timeout} s: {sync}\n{daemon.log()}")
        time.sleep(0.05)


def _local_events(daemon: DaemonProcess) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        response = daemon.request("read", from_seq=events[-1]["seq"] if events else 0, limit=1000)
        page = response["result"]["events"]
        if not page:
            return events
        events.extend(page)


def _rows(daemon: DaemonProcess, view: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = daemon.request("query", view=view, limit=10_000)["result"]["rows"]
    return rows


def _assert_remote_holds(double: ConvexDouble, daemon: DaemonProcess) -> list[dict[str, Any]]:
    local = _local_events(daemon)
    origin = _status(daemon)["origin"]
    remote = double.events(origin)
    assert len({e["event_id"] for e in remote}) == len(remote), "duplicates on the remote"
    assert remote == local
    assert double.status(origin)["events"] == len(local)
    return local


@pytest.fixture
def cleanup() -> Iterator[list[DaemonProcess]]:
    """Daemons started by a test; killed and removed afterwards whatever happened."""
    daemons: list[DaemonProcess] = []
    yield daemons
    for daemon in daemons:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_daemon_stopped_mid_round_resumes_and_delivers_exactly_once(
    signum: int, convex_double: ConvexDouble, config_file: Path, cleanup: list[DaemonProcess]
) -> None:
    """Killed or stopped while the remote holds an unanswered batch: restart, all arrive once."""
    with ProxyThread(convex_double.ingest_url) as pt:
        pt.proxy.faults.extend(["pass", "slow"])
        env = _env(pt.url_for(convex_double.ingest_url), convex_double.token)
        args = ["--config", str(config_file)]
        first = start_daemon(args=args, env=env)
        cleanup.append(first)
        _append(first, domain_events(100, "k"))
        pt.wait_held()
        origin = _status(first)["origin"]
        assert convex_double.status(origin)["events"] == 32  # committed, answer held
        code = first.stop(signum)
        assert code == (0 if signum == signal.SIGTERM else -signal.SIGKILL)

        second = start_daemon(first.root, args=args, env=env)
        cleanup.append(second)
        sync = _wait_synced(second)
        local = _assert_remote_holds(convex_double, second)
        second.stop()
    assert len(local) == 100
    assert (sync["acked_seq"], sync["rejected"], sync["remote_high_water"]) == (100, 0, 100)


@pytest.mark.slow
def test_two_daemons_sync_to_one_remote_and_their_views_merge(
    convex_double: ConvexDouble, config_file: Path
) -> None:
    """Two data dirs, two origins, one remote: both complete; remote views are the union."""
    env = _env(convex_double.ingest_url, convex_double.token)
    args = ["--config", str(config_file)]
    with running_daemon(args=args, env=env) as a, running_daemon(args=args, env=env) as b:
        _append(a, domain_events(150, "a", seed=1))
        _append(b, domain_events(150, "b", seed=2))
        for daemon in (a, b):
            assert _wait_synced(daemon)["acked_seq"] == 150
            _assert_remote_holds(convex_double, daemon)
        assert _status(a)["origin"] != _status(b)["origin"]
        for view in VIEW_KEYS:
            merged = sorted_rows(view, _rows(a, view) + _rows(b, view))
            assert sorted_rows(view, convex_double.view(view)) == merged, view
            assert merged, view


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlasd", "sync", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_the_sync_command_shows_runs_and_requeues(
    convex_double: ConvexDouble, config_file: Path
) -> None:
    """`atlasd sync` shows the state; --now reports failed and good rounds; --retry-rejected."""
    with ProxyThread(convex_double.ingest_url) as pt:
        env = _env(pt.url_for(convex_double.ingest_url), convex_double.token)
        with running_daemon(args=["--config", str(config_file)], env=env) as d:
            sock = str(d.socket)
            _append(d, domain_events(20, "c"))
            _wait_synced(d)

            shown = _cli("--socket", sock)
            assert shown.returncode == 0, shown.stderr
            assert "state" in shown.stdout
            assert "idle" in shown.stdout
            as_json = json.loads(_cli("--socket", sock, "--json").stdout)
            assert (as_json["acked_seq"], as_json["pending"], as_json["state"]) == (20, 0, "idle")

            pt.run(pt.proxy.refuse())
            _append(d, domain_events(5, "c2"))
            failed = _cli("--socket", sock, "--now")
            assert failed.returncode == 1
            assert "network" in failed.stderr
            pt.run(pt.proxy.accept())
            good = _cli("--socket", sock, "--now", "--json")
            assert good.returncode == 0, good.stderr
            outcome = json.loads(good.stdout)
            assert (outcome["ok"], outcome["acked_seq"]) == (True, 25)

            poison = str(uuid.uuid4())
            pt.proxy.rewrite = _poisoner(poison, _unstorable)
            with Client(d.socket, spool=False) as client:
                client.append("note:p", "Note", {"n": 1}, event_id=poison)
            # The append wakes the worker, which quarantines the event and moves on.
            assert _wait_synced(d)["rejected"] == 1
            shown = _cli("--socket", sock)
            assert shown.returncode == 0, shown.stderr
            assert "rejected" in shown.stdout

            pt.proxy.rewrite = None
            retried = _cli("--socket", sock, "--retry-rejected", "--now", "--json")
            assert retried.returncode == 0, retried.stderr
            assert json.loads(retried.stdout)["requeued"] == 1
            sync = _wait_synced(d)
            assert (sync["rejected"], sync["remote_high_water"]) == (0, 26)
            _assert_remote_holds(convex_double, d)

            status_text = json.dumps(_status(d))
            log = d.log()
        assert convex_double.token not in status_text
        assert convex_double.token not in log
        assert "sync.round" in log


def test_the_sync_command_exit_codes(short_dir: Path) -> None:
    """Unreachable daemon: 3; bad usage: 2; disabled sync shows 'disabled', --now exits 1."""
    missing = _cli("--socket", str(short_dir / "none.sock"))
    assert missing.returncode == 3
    assert _cli("--bogus").returncode == 2
    with running_daemon() as d:
        shown = _cli("--socket", str(d.socket), "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["state"] == "disabled"
        now = _cli("--socket", str(d.socket), "--now")
        assert now.returncode == 1
        assert "disabled" in now.stderr
