"""The backup and restore steps of docs/operations.md run verbatim."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import clean_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BIN = Path(sys.executable).parent

#: Stands in for systemd's user manager: stops and starts ``atlasd serve``.
SYSTEMCTL = """#!/bin/bash
set -e
[ "$1" = "--user" ] || { echo "only --user here" >&2; exit 1; }
case "$2" in
  stop)
    pid=$(cat "$ATLASD_TEST_PIDFILE")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done ;;
  start)
    atlasd serve >>"$ATLASD_TEST_LOG" 2>&1 &
    echo $! > "$ATLASD_TEST_PIDFILE"
    for _ in $(seq 400); do atlasd status >/dev/null 2>&1 && exit 0; sleep 0.05; done
    echo "atlasd did not start" >&2; exit 1 ;;
  *) echo "unknown: $2" >&2; exit 1 ;;
esac
"""


def restore_block() -> str:
    """The sh block of the backup and restore section that runs `atlasd restore ~/...`."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    found = [b for b in blocks if "atlasd restore ~/backups/atlasd.db" in b]
    assert len(found) == 1, "operations.md should have one user-service restore block"
    return found[0]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlasd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_documented_backup_and_restore_steps_run_as_written(home: Path) -> None:
    """backup, stop, restore, start, verify, status: each step exits 0 and the
    restored log continues under a new origin with the old one in its lineage."""
    tools = home / "bin"
    tools.mkdir()
    (tools / "systemctl").write_text(SYSTEMCTL)
    (tools / "systemctl").chmod(0o755)
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    env = clean_env(
        {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "PATH": f"{tools}:{BIN}:{os.environ['PATH']}",
            "ATLASD_TEST_PIDFILE": str(home / "atlasd.pid"),
            "ATLASD_TEST_LOG": str(home / "atlasd.log"),
            # A user service's data dir; set because as root the default is /var/lib.
            "ATLASD_DATA_DIR": str(home / ".local" / "state" / "atlasd"),
        }
    )

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", script], capture_output=True, text=True, env=env, timeout=120
        )

    started = sh("systemctl --user start atlasd.socket atlasd.service")
    assert started.returncode == 0, started.stderr
    try:
        for i in range(3):
            assert sh(f"atlasd emit note:doc Noted '{{\"i\": {i}}}'").returncode == 0
        origin = json.loads(sh("atlasd status --json").stdout)["origin"]
        out = sh(restore_block())
        assert out.returncode == 0, out.stdout + out.stderr + (home / "atlasd.log").read_text()
        status = json.loads(sh("atlasd status --json").stdout)
    finally:
        sh("systemctl --user stop atlasd.socket atlasd.service")
    assert status["origin"] != origin
    assert [entry["origin"] for entry in status["origin_lineage"]] == [origin]
    assert status["last_seq"] == 3
    assert "origin lineage" in out.stdout
    assert (home / "backups" / "atlasd.db").is_file()
    assert list((home / ".local" / "state" / "atlasd").glob("atlasd.db.replaced-*"))
