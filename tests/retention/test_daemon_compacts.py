"""The daemon compacts by itself: real daemon subprocesses, real files, the CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from atlasd.daemon.compaction import CAP_POLL_S
from atlasd.eventlog.archive import archive_dir
from atlasd.eventlog.datadir import db_path
from tests.reading.test_export_import import ATLASD, _generated, _run, _views
from tests.support.daemon import DaemonProcess, clean_env, start_daemon

BATCH = 200


def _config(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "atlasd.toml"
    path.write_text(body)
    return path


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    answer = daemon.request("status")
    assert answer["ok"], answer
    status: dict[str, Any] = answer["result"]
    return status


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _append_until(daemon: DaemonProcess, stop: threading.Event, done: list[int]) -> None:
    """A client appending batches one after the other until told to stop."""
    with daemon.connect() as conn:
        i = 0
        while not stop.is_set():
            answer = conn.request("append_batch", events=[_generated(n) for n in range(i, i + 50)])
            assert answer["ok"], answer
            i += 50
            done[0] = i


def _offline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATLASD, *args], capture_output=True, text=True, env=clean_env(), timeout=300
    )


def test_a_daemon_with_a_tiny_retention_compacts_by_itself_while_a_client_appends() -> None:
    """Events older than 0 days move into segments while a client keeps appending; every
    append is answered, status shows the last compaction, and the log reads, exports,
    verifies and rebuilds the same across the cut."""
    root = _short_root()
    config = _config(
        root,
        "[retention]\narchive_after_days = 0\nsegment_events = 500\ncompact_interval_s = 0.5\n",
    )
    daemon = start_daemon(root, args=["--config", str(config)])
    try:
        with daemon.connect() as conn:
            for start in range(0, 2_000, BATCH):
                batch = [_generated(i) for i in range(start, start + BATCH)]
                assert conn.request("append_batch", events=batch)["ok"]
        stop, done = threading.Event(), [0]
        appender = threading.Thread(target=_append_until, args=(daemon, stop, done))
        appender.start()
        try:
            _wait_for(lambda: (_status(daemon)["compaction"]["last_events"] or 0) >= 500)
            _wait_for(lambda: done[0] >= 1_000)
        finally:
            stop.set()
            appender.join(60)
        status = _status(daemon)
        compaction = status["compaction"]
        assert compaction["auto"] is True
        assert compaction["last_by"] == "daemon"
        assert compaction["steps"] > 0
        assert status["last_seq"] == 2_000 + done[0]
        segments = sorted(p.name for p in archive_dir(daemon.data_dir).iterdir())
        assert segments
        assert all(name.startswith("seg-") for name in segments)
        exported = _run("export", daemon=daemon).stdout.splitlines()
        assert [int(line.split('"seq":')[1].split(",")[0]) for line in exported] == list(
            range(1, status["last_seq"] + 1)
        )
        views = _views(daemon)
        metrics = _run("metrics", daemon=daemon).stdout
        assert "atlasd_compaction_last_events" in metrics
        assert daemon.stop() == 0
        verified = _offline("verify", "--data-dir", str(daemon.data_dir))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        rebuilt = _offline("rebuild", "--data-dir", str(daemon.data_dir))
        assert rebuilt.returncode == 0, rebuilt.stderr
        offline = _offline("export", "--data-dir", str(daemon.data_dir))
        assert offline.stdout.splitlines() == exported
        daemon.start()
        assert _views(daemon) == views
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_byte_setting_archives_the_oldest_events_and_the_file_shrinks() -> None:
    """With archive_past_bytes below the log's size the daemon moves the oldest events
    until the database is about that size, and the database file gets smaller."""
    root = _short_root()
    daemon = start_daemon(root)
    try:
        with daemon.connect() as conn:
            for start in range(0, 6_000, BATCH):
                batch = [_generated(i) for i in range(start, start + BATCH)]
                assert conn.request("append_batch", events=batch)["ok"]
        assert daemon.stop() == 0
        big = _db_size(daemon)
        config = _config(
            root,
            f"[retention]\narchive_past_bytes = {big // 2}\nsegment_events = 500\n"
            "compact_interval_s = 0.5\n",
        )
        daemon.args = ["--config", str(config)]
        daemon.start()
        _wait_for(lambda: _status(daemon)["compaction"]["last_events"] is not None)
        status = _status(daemon)
        assert 0 < status["compaction"]["last_events"] < 6_000
        assert status["compaction"]["last_bytes_freed"] > 0
        assert daemon.stop() == 0
        assert _db_size(daemon) < big * 0.8
        assert _offline("verify", "--data-dir", str(daemon.data_dir)).returncode == 0
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def _db_size(daemon: DaemonProcess) -> int:
    return sum(
        p.stat().st_size for p in daemon.data_dir.iterdir() if p.name.startswith("atlasd.db")
    )


def _short_root() -> Path:
    """A daemon root under /tmp: a socket path must stay short."""
    return Path(tempfile.mkdtemp(prefix="atlasd-", dir="/tmp"))


def test_the_size_cap_alert_starts_a_compaction_before_the_interval() -> None:
    """With an hour between scheduled runs, a database that reaches the cap's alert is
    compacted within seconds, and appends go on under the cap."""
    root = _short_root()
    config = _config(
        root,
        "max_db_bytes = 3000000\n[retention]\narchive_after_days = 0\n"
        "compact_interval_s = 3600\nsegment_events = 500\n",
    )
    daemon = start_daemon(root, args=["--config", str(config)])
    try:
        time.sleep(CAP_POLL_S + 1)  # past the first run, soon after start: it finds nothing
        assert _status(daemon)["compaction"]["last_events"] is None
        with daemon.connect() as conn:
            start = 0
            while not _status(daemon)["cap"]["alert"]:
                batch = [_generated(i) for i in range(start, start + BATCH)]
                assert conn.request("append_batch", events=batch)["ok"]
                start += BATCH
        _wait_for(lambda: _status(daemon)["compaction"]["last_events"] is not None, 30)
        status = _status(daemon)
        assert status["compaction"]["last_events"] > 0
        with daemon.connect() as conn:
            batch = [_generated(i) for i in range(start, start + BATCH)]
            assert conn.request("append_batch", events=batch)["ok"]
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_daemon_killed_while_it_compacts_loses_nothing_and_finishes_after_restart() -> None:
    """SIGKILL in the middle of the daemon's own compaction, with a client appending:
    the log verifies, holds every acknowledged event once, and the restarted daemon
    finishes the move."""
    root = _short_root()
    config = _config(
        root,
        "[retention]\narchive_after_days = 0\nsegment_events = 1000\ncompact_interval_s = 0.2\n",
    )
    daemon = start_daemon(root, args=["--no-spool"])
    try:
        with daemon.connect() as conn:
            for start in range(0, 20_000, 1_000):
                batch = [_generated(i) for i in range(start, start + 1_000)]
                assert conn.request("append_batch", events=batch)["ok"]
        assert daemon.stop() == 0
        daemon.args = ["--no-spool", "--config", str(config)]
        daemon.start()
        acked = [0]
        stop = threading.Event()

        def append() -> None:
            with daemon.connect() as conn:
                i = 0
                while not stop.is_set():
                    try:
                        answer = conn.request("append", **_generated(100_000 + i))
                    except (OSError, EOFError, ValueError):
                        return  # the daemon was killed
                    acked[0] = max(acked[0], answer["result"]["seq"])
                    i += 1

        appender = threading.Thread(target=append)
        appender.start()
        _wait_for(lambda: _status(daemon)["compaction"]["steps"] >= 20)
        daemon.kill()
        stop.set()
        appender.join(30)
        assert acked[0] > 20_000
        verified = _offline("verify", "--data-dir", str(daemon.data_dir))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        exported = _offline("export", "--data-dir", str(daemon.data_dir)).stdout.splitlines()
        seqs = [json.loads(line)["seq"] for line in exported]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) >= acked[0]
        daemon.start()
        _wait_for(lambda: _live_events(daemon) == 0)
        assert daemon.stop() == 0
        assert _offline("verify", "--data-dir", str(daemon.data_dir)).returncode == 0
        again = _offline("export", "--data-dir", str(daemon.data_dir)).stdout.splitlines()
        assert again == exported
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def _live_events(daemon: DaemonProcess) -> int:
    """Rows still in the live table (read beside the running daemon)."""
    conn = sqlite3.connect(f"file:{db_path(daemon.data_dir)}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def test_a_failing_compaction_is_logged_and_the_daemon_keeps_serving() -> None:
    """A compaction that cannot write its segment is a warning in the log; the daemon
    answers and appends as before."""
    root = _short_root()
    config = _config(root, "[retention]\narchive_after_days = 0\ncompact_interval_s = 0.2\n")
    (root / "data").mkdir()
    (root / "data" / "archive").write_text("not a directory")
    daemon = start_daemon(root, args=["--no-spool", "--config", str(config)])
    try:
        assert daemon.request("append", **_generated(0))["ok"]
        _wait_for(lambda: "compaction_failed" in daemon.log())
        assert daemon.request("append", **_generated(1))["result"]["seq"] == 2
        assert _status(daemon)["compaction"]["last_events"] is None
    finally:
        assert daemon.stop() == 0
        shutil.rmtree(root, ignore_errors=True)
