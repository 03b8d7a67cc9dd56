"""The shell blocks of docs/operations.md run verbatim.

Each ``sh`` block is preceded by a marker ``<!-- sh: NAME -->``; the blocks
named ``real (...)`` need a running systemd or a user manager and are checked
under one instead (tests/systemd/container). The system-service blocks run
with ``DESTDIR`` at a scratch root, stand-ins for ``sudo`` and ``systemctl``,
and the real ``systemd-sysusers``/``systemd-tmpfiles`` (``--root``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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


def doc_blocks() -> list[tuple[str, str]]:
    """``(marker, script)`` for every sh block of the page, in order."""
    found = re.findall(r"(?:<!-- sh: ([^>]*?) -->\n)?```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    return [(marker, script) for marker, script in found]


def block(name: str) -> str:
    found = [script for marker, script in doc_blocks() if marker == name]
    assert len(found) == 1, f"operations.md should have one block marked {name!r}"
    return found[0]


def restore_block() -> str:
    """The sh block of the backup and restore section that runs `atlasd restore ~/...`."""
    script = block("user-restore")
    assert "atlasd restore ~/backups/atlasd.db" in script
    return script


#: Markers of the blocks the tests below run.
RUN_HERE = {"install", "members", "sync", "backup", "restore", "upgrade", "uninstall"}
RUN_HERE |= {"user-restore", "doctor", "compaction"}


def test_every_shell_block_is_run_here_or_marked_as_needing_a_real_systemd() -> None:
    """No sh block escapes the test: each is run below, or marked real with a reason."""
    blocks = doc_blocks()
    assert len(blocks) >= 10
    for marker, script in blocks:
        assert marker in RUN_HERE or re.fullmatch(r"real \(.+\)", marker), script
    assert {m for m, _ in blocks} >= RUN_HERE


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlasd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_documented_backup_and_restore_steps_run_as_written(home: Path) -> None:
    """backup, stop, restore, start, verify, status, then doctor: each step exits 0
    and the restored log continues under a new origin with the old one in its lineage."""
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
        doctor = sh(block("doctor"))
    finally:
        sh("systemctl --user stop atlasd.socket atlasd.service")
    assert status["origin"] != origin
    assert [entry["origin"] for entry in status["origin_lineage"]] == [origin]
    assert status["last_seq"] == 3
    assert "origin lineage" in out.stdout
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "socket" in doctor.stdout
    assert (home / "backups" / "atlasd.db").is_file()
    assert list((home / ".local" / "state" / "atlasd").glob("atlasd.db.replaced-*"))


def test_the_documented_compaction_figures_show_a_daemon_that_compacted_by_itself(
    home: Path,
) -> None:
    """A user daemon with a tiny retention compacts by itself; the documented status and
    metrics lines then show its last compaction."""
    tools = home / "bin"
    tools.mkdir()
    (tools / "systemctl").write_text(SYSTEMCTL)
    (tools / "systemctl").chmod(0o755)
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    config = home / "atlasd.toml"
    config.write_text("[retention]\narchive_after_days = 0\ncompact_interval_s = 0.2\n")
    env = clean_env(
        {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "PATH": f"{tools}:{BIN}:{os.environ['PATH']}",
            "ATLASD_TEST_PIDFILE": str(home / "atlasd.pid"),
            "ATLASD_TEST_LOG": str(home / "atlasd.log"),
            "ATLASD_DATA_DIR": str(home / ".local" / "state" / "atlasd"),
            "ATLASD_CONFIG": str(config),
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
        deadline = time.monotonic() + 30
        while json.loads(sh("atlasd status --json").stdout)["compaction"]["last_events"] is None:
            assert time.monotonic() < deadline, (home / "atlasd.log").read_text()
            time.sleep(0.1)
        out = sh(block("compaction"))
    finally:
        sh("systemctl --user stop atlasd.socket atlasd.service")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(re.fullmatch(r"compaction\.auto\s+(true|yes)", line) for line in lines), lines
    # the daemon may have compacted between two emits: the last run moved 1 to 3 events
    assert any(re.fullmatch(r"compaction\.last_events\s+[123]", line) for line in lines), lines
    assert any(re.fullmatch(r"atlasd_compaction_last_events [123]\.0", line) for line in lines)


#: ``sudo`` here: the test already runs as root; ``-u USER`` is dropped (the
#: staged root's accounts are not this machine's).
SUDO = """#!/bin/bash
[ "$1" = "-u" ] && shift 2
exec "$@"
"""

#: Stands in for the system manager: runs ``atlasd serve`` on the staged root's
#: socket and data dir, as the units would.
SYSTEM_SYSTEMCTL = """#!/bin/bash
set -e
echo "systemctl $*" >> "$ATLASD_TEST_CALLS"
start() {
  atlasd serve --data-dir "$DESTDIR/var/lib/atlasd" --socket "$DESTDIR/run/atlasd/atlasd.sock" \\
    >>"$ATLASD_TEST_LOG" 2>&1 &
  echo $! > "$ATLASD_TEST_PIDFILE"
  for _ in $(seq 400); do
    atlasd status --socket "$DESTDIR/run/atlasd/atlasd.sock" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "atlasd did not start" >&2; exit 1
}
stop() {
  [ -s "$ATLASD_TEST_PIDFILE" ] || return 0
  pid=$(cat "$ATLASD_TEST_PIDFILE"); : > "$ATLASD_TEST_PIDFILE"
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}
case "$1" in
  daemon-reload) ;;
  enable) [ "$2" = "--now" ] && start ;;
  disable) [ "$2" = "--now" ] && stop ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "unknown: $1" >&2; exit 1 ;;
esac
"""

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("systemd-sysusers") is None,
    reason="the staged install chowns files (root) and needs systemd-sysusers/-tmpfiles",
)


@needs_root
def test_the_system_service_steps_run_as_written_into_a_staged_root(home: Path) -> None:
    """install, members, sync, backup, restore, upgrade, uninstall: each block exits 0
    and leaves what the page says, in a scratch DESTDIR."""
    destdir = home / "root"
    destdir.mkdir()
    tools = home / "bin"
    tools.mkdir()
    for name, text in (("sudo", SUDO), ("systemctl", SYSTEM_SYSTEMCTL)):
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    calls = home / "calls"
    env = clean_env(
        {
            "HOME": str(home),
            "DESTDIR": str(destdir),
            # The installed program first: these steps use what step 1 installed.
            "PATH": f"{tools}:{destdir}/opt/atlasd/bin:{os.environ['PATH']}",
            "ATLASD_TEST_PIDFILE": str(home / "atlasd.pid"),
            "ATLASD_TEST_LOG": str(home / "atlasd.log"),
            "ATLASD_TEST_CALLS": str(calls),
            "CONVEX_URL": "https://happy-otter-123.convex.cloud",
            "TOKEN": "secret-token-value",
        }
    )
    socket_path = destdir / "run" / "atlasd" / "atlasd.sock"
    data = destdir / "var" / "lib" / "atlasd"

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["sh", "-e", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=DOC.parents[1],
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr + (home / "atlasd.log").read_text()
        return done

    for top in ("run", "etc"):  # a booted machine has both
        (destdir / top).mkdir()
    (home / "atlasd.log").touch()
    (home / "atlasd.pid").touch()
    try:
        sh(block("install"))
        passwd = (destdir / "etc" / "passwd").read_text()
        assert re.search(
            r"^atlasd:x:\d+:\d+:atlasd event log daemon:/var/lib/atlasd:", passwd, re.M
        )
        spool = data / "spool"
        assert oct(spool.stat().st_mode & 0o7777) == "0o3770"
        assert oct((data / "backups").stat().st_mode & 0o7777) == "0o700"
        doc = destdir / "usr" / "local" / "share" / "doc" / "atlasd" / "operations.md"
        assert doc.read_text() == DOC.read_text()
        unit = (destdir / "etc" / "systemd" / "system" / "atlasd.service").read_text()
        assert (
            f"Documentation=file://{doc.relative_to(destdir).as_posix()}".replace(
                "file://", "file:///"
            )
            in unit
        )
        assert os.readlink(destdir / "usr" / "local" / "bin" / "atlasd") == "/opt/atlasd/bin/atlasd"
        assert "systemctl enable --now atlasd.socket atlasd.service" in calls.read_text()

        # alice, an account of the staged machine.
        for name, line in (
            ("passwd", "alice:x:1500:1500::/home/alice:/bin/sh"),
            ("group", "alice:x:1500:"),
        ):
            with (destdir / "etc" / name).open("a") as accounts:
                accounts.write(line + "\n")
        sh(block("members"))
        group = (destdir / "etc" / "group").read_text()
        assert re.search(r"^atlasd:x:\d+:alice$", group, re.M)

        sh(block("sync"))
        assert (
            destdir / "etc" / "atlasd" / "env"
        ).read_text() == f"CONVEX_URL={env['CONVEX_URL']}\n"
        token = destdir / "etc" / "credstore" / "atlasd.ingest-token"
        assert token.read_text() == env["TOKEN"]
        assert oct(token.stat().st_mode & 0o777) == "0o600"

        for i in range(3):
            sh(f"atlasd emit --socket {socket_path} note:doc Noted '{{\"i\": {i}}}'")
        origin = json.loads(sh(f"atlasd status --json --socket {socket_path}").stdout)["origin"]
        sh(block("backup"))
        assert len(list((data / "backups").glob("atlasd-*.db"))) == 1
        sh(block("restore"))
        status = json.loads(sh(f"atlasd status --json --socket {socket_path}").stdout)
        assert status["last_seq"] == 3
        assert [entry["origin"] for entry in status["origin_lineage"]] == [origin]

        sh(block("upgrade"))
        assert (
            json.loads(sh(f"atlasd status --json --socket {socket_path}").stdout)["last_seq"] == 3
        )

        sh(block("uninstall"))
    finally:
        subprocess.run([str(tools / "systemctl"), "stop"], env=env, check=False)
    assert not (home / "atlasd.pid").read_text().strip()
    assert "atlasd:" not in (destdir / "etc" / "passwd").read_text()
    left = sorted(
        str(path.relative_to(destdir)) for path in destdir.rglob("*") if "atlasd" in path.name
    )
    assert left == []
