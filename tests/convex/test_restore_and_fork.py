"""A restored backup or a hand-copied data dir never strands events: the remote ends up
holding every event exactly once and nothing stays quarantined."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.convex_double import ConvexDouble
from tests.support.daemon import DaemonProcess, clean_env, start_daemon

ATLASD = str(Path(sys.executable).parent / "atlasd")
WAIT_S = 60.0


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlasd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(double: ConvexDouble) -> dict[str, str]:
    return {"ATLASD_INGEST_URL": double.ingest_url, "ATLASD_INGEST_TOKEN": double.token}


def _ok(answer: dict[str, Any]) -> Any:
    assert answer.get("ok") is True, answer
    return answer["result"]


def _append(daemon: DaemonProcess, tag: str, count: int) -> list[str]:
    events = [
        {"stream": f"note:{tag}", "type": "Noted", "data": {"tag": tag, "n": i}}
        for i in range(count)
    ]
    results = _ok(daemon.request("append_batch", events=events))["results"]
    return [r["event_id"] for r in results]


def _settled(daemon: DaemonProcess) -> dict[str, Any]:
    """Status once everything is acked and nothing is quarantined (or fail after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        _ok(daemon.request("sync_now", wait=True))
        status = _ok(daemon.request("status"))
        sync = status["sync"]
        if sync["pending"] == 0 and sync["rejected"] == 0 and sync["state"] == "idle":
            return status
        assert time.monotonic() < deadline, f"sync never settled: {sync}\n{daemon.log()}"
        time.sleep(0.1)


def _local_ids(daemon: DaemonProcess) -> list[str]:
    return [e["event_id"] for e in _ok(daemon.request("read", limit=10_000))["events"]]


def _remote_ids(double: ConvexDouble, origins: list[str]) -> list[str]:
    return [e["event_id"] for origin in origins for e in double.events(origin)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATLASD, *args], capture_output=True, text=True, env=clean_env(), timeout=60
    )


def test_restore_then_append_leaves_every_event_on_the_remote_once(
    convex_double: ConvexDouble, root: Path
) -> None:
    """Back up, sync more, restore, append: no seq_conflict, every event once remotely."""
    daemon = start_daemon(root, env=_env(convex_double))
    try:
        before = _append(daemon, "before", 10)
        first = _settled(daemon)
        backup = root / "backup.db"
        out = _cli("backup", str(backup), "--data-dir", str(daemon.data_dir))
        assert out.returncode == 0, out.stderr
        after_backup = _append(daemon, "after-backup", 5)
        _settled(daemon)
    finally:
        daemon.stop()
    out = _cli("restore", str(backup), "--data-dir", str(daemon.data_dir), "--json")
    assert out.returncode == 0, out.stderr
    daemon = start_daemon(root, env=_env(convex_double))
    try:
        restored = _append(daemon, "after-restore", 5)
        status = _settled(daemon)
        local = _local_ids(daemon)
    finally:
        daemon.stop()
    old, new = first["origin"], status["origin"]
    assert new != old
    assert [entry["origin"] for entry in status["origin_lineage"]] == [old]
    assert status["origin_lineage"][0]["until_seq"] == 10
    assert local == before + restored
    remote = _remote_ids(convex_double, [old, new])
    assert sorted(remote) == sorted(before + after_backup + restored)
    # The new origin's positions cover the whole restored log.
    assert convex_double.status(new)["high_water"] == len(local)
    verify = _cli("verify", "--data-dir", str(daemon.data_dir))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_data_dir_copied_by_hand_recovers_at_its_first_sync_loudly(
    convex_double: ConvexDouble, root: Path
) -> None:
    """Two daemons on copies of one data dir: the one refused with seq_conflict
    continues under a new origin, says so in its log, and nothing is lost or doubled."""
    (root / "a").mkdir()
    a = start_daemon(root / "a", env=_env(convex_double))
    try:
        shared = _append(a, "shared", 10)
        origin = _settled(a)["origin"]
    finally:
        a.stop()
    (root / "b").mkdir()
    shutil.copytree(a.data_dir, root / "b" / "data")
    a = start_daemon(root / "a", env=_env(convex_double))
    b = start_daemon(root / "b", env=_env(convex_double))
    try:
        only_a = _append(a, "only-a", 5)
        _settled(a)
        only_b = _append(b, "only-b", 7)
        status_b = _settled(b)
        assert _settled(a)["origin"] == origin  # the first to sync keeps its origin
    finally:
        a.stop()
        b.stop()
    assert status_b["origin"] != origin
    assert [entry["reason"] for entry in status_b["origin_lineage"]] == [
        f"seq_conflict: the remote holds seqs of {origin} with other events"
    ]
    assert "sync.reorigined" in b.log()
    remote = _remote_ids(convex_double, [origin, status_b["origin"]])
    assert sorted(remote) == sorted(shared + only_a + only_b)
    assert convex_double.status(status_b["origin"])["high_water"] == 17


def test_restore_refuses_while_a_daemon_runs_and_changes_nothing(root: Path) -> None:
    """restore into a data dir a daemon holds exits 1, naming the fix."""
    daemon = start_daemon(root)
    try:
        _append(daemon, "x", 3)
        backup = root / "b.db"
        assert _cli("backup", str(backup), "--data-dir", str(daemon.data_dir)).returncode == 0
        out = _cli("restore", str(backup), "--data-dir", str(daemon.data_dir))
        assert out.returncode == 1
        assert "stop it, then restore" in out.stderr
        assert len(_local_ids(daemon)) == 3
    finally:
        daemon.stop()


def test_restore_of_a_file_that_is_not_a_backup_is_refused(root: Path) -> None:
    """A file that is not an event log is refused and the data dir keeps its database."""
    daemon = start_daemon(root)
    _append(daemon, "x", 2)
    daemon.stop()
    junk = root / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    out = _cli("restore", str(junk), "--data-dir", str(daemon.data_dir))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    missing = _cli("restore", str(root / "nope.db"), "--data-dir", str(daemon.data_dir))
    assert missing.returncode == 2
    assert "no backup file at" in missing.stderr
    daemon = start_daemon(root)
    try:
        assert len(_local_ids(daemon)) == 2
    finally:
        daemon.stop()


def test_restore_replaces_a_damaged_database_and_keeps_it_aside(root: Path) -> None:
    """A database that no longer opens is moved aside, no stale WAL stays beside the
    restored one, and the backup takes its place."""
    daemon = start_daemon(root)
    try:
        _append(daemon, "x", 4)
        backup = root / "good.db"
        assert _cli("backup", str(backup), "--data-dir", str(daemon.data_dir)).returncode == 0
    finally:
        daemon.stop()
    db = daemon.data_dir / "atlasd.db"
    db.write_bytes(b"garbage, not SQLite" * 512)
    (daemon.data_dir / "atlasd.db-wal").write_bytes(b"stale wal")
    out = _cli("restore", str(backup), "--data-dir", str(daemon.data_dir))
    assert out.returncode == 0, out.stderr
    assert not (daemon.data_dir / "atlasd.db-wal").exists()
    aside = [p for p in daemon.data_dir.glob("atlasd.db.replaced-*") if "-wal" not in p.name]
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"garbage, not SQLite")
    daemon = start_daemon(root)
    try:
        assert len(_local_ids(daemon)) == 4
    finally:
        daemon.stop()
