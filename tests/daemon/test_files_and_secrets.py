"""The data dir and the token: a damaged page is reported at start-up, data files,
backups and exports are private whatever the umask, and the ingest token never shows."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import msgspec

from atlasd.config import resolve_config
from tests.daemon.conftest import NO_SPOOL
from tests.support.daemon import DaemonProcess, clean_env, start_daemon

TOKEN = "Tok3n-Sup3r/Secret+Value=="


def _fill(daemon: DaemonProcess, count: int) -> None:
    with daemon.connect() as conn:
        for start in range(0, count, 500):
            batch = [
                {"stream": f"s:{i % 7}", "type": "T", "data": {"pad": "p" * 300, "i": i}}
                for i in range(start, start + 500)
            ]
            assert conn.request("append_batch", events=batch)["ok"]


def _status_until(daemon: DaemonProcess, key: str, done: set[str]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        value: dict[str, object] = daemon.request("status")["result"][key]
        if value["state"] in done or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_damaged_database_page_is_reported_at_start_up() -> None:
    """Garbage over a page in the middle of atlasd.db: the daemon starts, and status and
    the log say the database is corrupt (instead of later reads failing with internal)."""
    daemon = start_daemon(args=NO_SPOOL)
    try:
        _fill(daemon, 5000)
        assert _status_until(daemon, "integrity", {"ok"})["state"] == "ok"
        assert daemon.stop() == 0
        db = daemon.data_dir / "atlasd.db"
        size = db.stat().st_size
        with open(db, "r+b") as f:
            f.seek((size // 2) // 4096 * 4096)
            f.write(os.urandom(4096))
        daemon.start()
        report = _status_until(daemon, "integrity", {"ok", "corrupt"})
        assert report["state"] == "corrupt"
        assert report["problems"]
        assert "database_corrupt" in daemon.log()
    finally:
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_data_files_backups_and_exports_are_private_whatever_the_umask() -> None:
    """Under umask 000, atlasd.db and its -wal/-shm, a backup and an export are all 0600."""
    daemon = start_daemon(args=NO_SPOOL, wait=False)
    daemon.stop()
    daemon.start(umask=0)
    try:
        _fill(daemon, 500)
        for name in ("atlasd.db", "atlasd.db-wal", "atlasd.db-shm", "atlasd.lock"):
            assert _mode(daemon.data_dir / name) == 0o600, name
        env = clean_env({"ATLASD_SOCKET": str(daemon.socket)})
        backup, export = daemon.root / "copy.db", daemon.root / "all.ndjson"
        for args in (
            ["backup", str(backup), "--data-dir", str(daemon.data_dir)],
            ["export", "-o", str(export)],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "atlasd", *args],
                env=env,
                umask=0,
                capture_output=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
        assert _mode(backup) == 0o600
        assert _mode(export) == 0o600
        assert export.read_bytes().count(b"\n") == 500
    finally:
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        secret.lower(),
        secret.upper(),
        quote(secret, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
    ]


def test_the_token_never_shows_in_logs_status_or_config_reprs() -> None:
    """A token that also sits in the ingest URL (where it does not belong) is masked in the
    log, in status, and in the config's repr; a config error echoing it masks it too."""
    url = f"http://127.0.0.1:9/ingest?key={quote(TOKEN, safe='')}&k2={TOKEN.upper()}"
    env = {"ATLASD_INGEST_TOKEN": TOKEN, "ATLASD_INGEST_URL": url}
    config = resolve_config(env=clean_env(env))
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config.sync)
    daemon = start_daemon(args=[*NO_SPOOL, "--log-level", "debug"], env=env)
    try:
        with daemon.connect() as conn:
            assert conn.request("append", stream="s", type="T", data={})["ok"]
            conn.request("sync_now", wait=True)
            status = msgspec.json.encode(conn.request("status")).decode()
    finally:
        daemon.stop()
    log = daemon.log()
    shutil.rmtree(daemon.root, ignore_errors=True)
    assert "***" in log
    for form in _forms(TOKEN):
        assert form not in log, form
        assert form not in status, form
    bad = subprocess.run(
        [sys.executable, "-m", "atlasd.daemon", "--socket", "/tmp/x.sock"],
        env=clean_env({"ATLASD_INGEST_TOKEN": TOKEN, "CONVEX_URL": f"ftp://{TOKEN}"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "CONVEX_URL" in bad.stderr
    for form in _forms(TOKEN):
        assert form not in bad.stderr, form
