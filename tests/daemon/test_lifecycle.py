"""Start-up and access: socket modes, peer credentials, stale sockets, the data dir lock,
configuration errors, and stops by SIGTERM, SIGINT and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import NO_SPOOL, event
from tests.support.daemon import (
    DaemonProcess,
    RawConnection,
    clean_env,
    running_daemon,
    start_daemon,
)

NOBODY = 65534
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")


def _serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a daemon expected to fail at start-up; returns its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "atlasd.daemon", *NO_SPOOL, *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_socket_is_private_in_a_directory_the_daemon_creates(short_dir: Path) -> None:
    """Without a group the socket is mode 0600 in a new 0700 directory."""
    sock = short_dir / "run" / "atlasd.sock"
    d = start_daemon(short_dir, args=NO_SPOOL, socket=sock)
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        with RawConnection(sock) as conn:
            assert conn.request("ping")["ok"]
    finally:
        assert d.stop() == 0
    assert not sock.exists()


@ROOT_ONLY
def test_a_socket_group_makes_the_socket_0660_for_that_group(short_dir: Path) -> None:
    """With socket_group the socket is mode 0660 and owned by that group."""
    with running_daemon(args=[*NO_SPOOL, "--socket-group", str(NOBODY)]) as d:
        st = os.stat(d.socket)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == NOBODY


def _ping_as(uid: int, gid: int, sock: Path) -> dict[str, Any]:
    """Connect as another user (the test runs as root) and return the first line."""
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        's.sendall(b\'{"op": "ping", "id": 1}\\n\')\n'
        "print(s.makefile().readline(), end='')\n"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", code, str(sock)],
        user=uid,
        group=gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _open_up(d: DaemonProcess) -> None:
    """Let every uid reach the socket file, so only SO_PEERCRED decides."""
    os.chmod(d.root, 0o755)
    os.chmod(d.socket, 0o666)


@ROOT_ONLY
def test_a_peer_not_allowed_gets_forbidden(short_dir: Path) -> None:
    """Another uid reaching the socket is told forbidden; nothing else happens."""
    with running_daemon(args=NO_SPOOL) as d:
        _open_up(d)
        response = _ping_as(NOBODY, NOBODY, d.socket)
        assert response["ok"] is False
        assert response["error"]["code"] == "forbidden"
        assert d.request("ping")["ok"]
        assert "peer_forbidden" in d.log()


@ROOT_ONLY
def test_allowed_uids_and_the_socket_group_admit_other_peers(short_dir: Path) -> None:
    """A uid in allowed_uids, or a member of the socket group, gets answers."""
    config = short_dir / "c.toml"
    config.write_text(f"allowed_uids = [{NOBODY}]\n")
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d:
        _open_up(d)
        assert _ping_as(NOBODY, NOBODY, d.socket)["ok"] is True
    with running_daemon(args=[*NO_SPOOL, "--socket-group", str(NOBODY)]) as d:
        _open_up(d)
        assert _ping_as(NOBODY, NOBODY, d.socket)["ok"] is True
        assert _ping_as(NOBODY, 1, d.socket)["error"]["code"] == "forbidden"


def test_a_stale_socket_file_is_replaced(short_dir: Path) -> None:
    """A socket file nobody listens on (a crashed daemon's) is replaced at start-up."""
    sock_path = short_dir / "atlasd.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock_path))
    stale.close()
    d = start_daemon(short_dir, args=NO_SPOOL)
    try:
        assert d.request("ping")["ok"]
    finally:
        assert d.stop() == 0


def test_a_file_that_is_not_a_socket_is_never_replaced(short_dir: Path) -> None:
    """A regular file at the socket path stops the start-up (exit 1) and stays untouched."""
    path = short_dir / "atlasd.sock"
    path.write_text("precious")
    done = _serve("--socket", str(path), "--data-dir", str(short_dir / "data"))
    assert done.returncode == 1
    assert "not a socket" in done.stderr
    assert path.read_text() == "precious"


def test_a_socket_served_by_a_live_daemon_is_not_taken_over(short_dir: Path) -> None:
    """A second daemon on a live socket exits 1 and the first keeps serving."""
    with running_daemon(args=NO_SPOOL) as first:
        done = _serve("--socket", str(first.socket), "--data-dir", str(short_dir / "other"))
        assert done.returncode == 1
        assert "another daemon is serving" in done.stderr
        assert first.request("ping")["ok"]


def test_a_second_daemon_on_the_same_data_dir_refuses_to_start(short_dir: Path) -> None:
    """The data dir lock: a second daemon exits 1 naming the holder's pid."""
    with running_daemon(args=NO_SPOOL) as first:
        done = _serve("--socket", str(short_dir / "b.sock"), "--data-dir", str(first.data_dir))
        assert done.returncode == 1
        assert str(first.pid) in done.stderr
        assert first.request("ping")["ok"]


def test_a_bad_configuration_exits_2_with_the_reason(short_dir: Path) -> None:
    """An unknown key in the TOML file is a usage error (exit 2) naming the key."""
    config = short_dir / "c.toml"
    config.write_text("max_conections = 5\n")
    done = _serve("--config", str(config), "--socket", str(short_dir / "s.sock"))
    assert done.returncode == 2
    assert "max_conections" in done.stderr
    assert not (short_dir / "s.sock").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_exits_0_and_removes_the_socket(signum: int) -> None:
    """SIGTERM and SIGINT stop the daemon cleanly: exit 0, socket gone, 'stopped' logged."""
    d = start_daemon(args=NO_SPOOL)
    assert d.request("append", **event(1))["ok"]
    assert d.stop(signum) == 0
    assert not d.socket.exists()
    assert "stopped" in d.log()
    again = start_daemon(d.root, args=NO_SPOOL)
    try:
        assert again.request("status")["result"]["last_seq"] == 1
    finally:
        assert again.stop() == 0


def test_the_default_configuration_with_the_spool_stops_cleanly() -> None:
    """The embedded default (spool watcher on) also stops with exit 0."""
    with running_daemon() as d:
        assert d.request("ping")["ok"]


class _Appender(threading.Thread):
    """Appends until the daemon goes away; records every acknowledged event."""

    def __init__(self, daemon: DaemonProcess, name: str, pipeline: int) -> None:
        super().__init__(daemon=True)
        self.conn = daemon.connect()
        self.stream = name
        self.pipeline = pipeline
        self.acked: dict[str, int] = {}
        self.failures: list[dict[str, Any]] = []

    def run(self) -> None:
        try:
            while True:
                ids = [str(uuid.uuid4()) for _ in range(self.pipeline)]
                self.conn.send(
                    b"".join(
                        json.dumps({"op": "append", "id": i, "event_id": i, **event(0, self.stream)}
                                   ).encode() + b"\n"
                        for i in ids
                    )
                )  # fmt: skip
                for _ in ids:
                    response = self.conn.recv()
                    if response["ok"]:
                        self.acked[response["result"]["event_id"]] = response["result"]["seq"]
                    else:
                        self.failures.append(response)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            self.conn.close()


def _stop_under_load(signum: int) -> tuple[DaemonProcess, list[_Appender], int]:
    d = start_daemon(args=NO_SPOOL)
    appenders = [_Appender(d, f"a{n}", pipeline=1 + n % 3 * 10) for n in range(8)]
    for appender in appenders:
        appender.start()
    while d.request("status")["result"]["last_seq"] < 2000:
        pass
    code = d.stop(signum)
    for appender in appenders:
        appender.join(30)
        assert not appender.is_alive()
    return d, appenders, code


def _assert_all_acknowledged_present(
    d: DaemonProcess, appenders: list[_Appender], at_least: int = 2000
) -> None:
    again = start_daemon(d.root, args=NO_SPOOL)
    try:
        stored: dict[str, int] = {}
        cursor = 0
        with again.connect() as conn:
            while True:
                page = conn.request("read", from_seq=cursor, limit=10_000)["result"]
                stored.update((e["event_id"], e["seq"]) for e in page["events"])
                if not page["events"]:
                    break
                cursor = page["last_seq"]
        acked = {k: v for a in appenders for k, v in a.acked.items()}
        assert len(acked) >= at_least
        missing = {k: v for k, v in acked.items() if stored.get(k) != v}
        assert not missing, f"{len(missing)} acknowledged events missing after restart"
        assert sorted(stored.values()) == list(range(1, len(stored) + 1))
    finally:
        assert again.stop() == 0


@pytest.mark.slow
def test_sigterm_under_concurrent_appends_keeps_every_acknowledged_event() -> None:
    """SIGTERM during a load of appenders: exit 0, in-flight requests answered or refused
    with unavailable, and every acknowledged event is there after a restart."""
    d, appenders, code = _stop_under_load(signal.SIGTERM)
    assert code == 0, d.log()
    for appender in appenders:
        assert all(f["error"]["code"] == "unavailable" for f in appender.failures)
    _assert_all_acknowledged_present(d, appenders)


@pytest.mark.slow
def test_stop_signals_repeated_during_shutdown_are_absorbed() -> None:
    """SIGTERM and SIGINT sent again and again while the daemon stops never kill it:
    exit 0, every acknowledged event there after a restart."""
    d = start_daemon(args=NO_SPOOL)
    appenders = [_Appender(d, f"a{n}", pipeline=20) for n in range(4)]
    for appender in appenders:
        appender.start()
    while d.request("status")["result"]["last_seq"] < 1000:
        pass
    assert d.proc is not None
    deadline = time.monotonic() + 30
    signals = 0
    while d.proc.poll() is None and time.monotonic() < deadline:
        d.proc.send_signal(signal.SIGTERM if signals % 2 == 0 else signal.SIGINT)
        signals += 1
        time.sleep(0.001)
    code = d.stop()
    for appender in appenders:
        appender.join(30)
    assert signals > 1
    assert code == 0, d.log()
    _assert_all_acknowledged_present(d, appenders, at_least=1000)


@pytest.mark.slow
def test_sigkill_under_concurrent_appends_keeps_every_acknowledged_event() -> None:
    """kill -9 during a load of appenders loses nothing acknowledged; the stale socket left
    behind is replaced at the restart."""
    d, appenders, code = _stop_under_load(signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert d.socket.exists()
    _assert_all_acknowledged_present(d, appenders)


def test_atlasd_serve_is_the_same_daemon(short_dir: Path) -> None:
    """`python -m atlasd serve` (the CLI entry) serves and stops with exit 0."""
    d = DaemonProcess(
        root=short_dir,
        socket=short_dir / "atlasd.sock",
        data_dir=short_dir / "data",
        args=[],
        env=clean_env(),
    )
    command = [sys.executable, "-m", "atlasd", "serve", "--socket", str(d.socket),
               "--data-dir", str(d.data_dir), *NO_SPOOL]  # fmt: skip
    d.start(command=command)
    try:
        assert d.request("append", **event(1))["result"]["seq"] == 1
    finally:
        assert d.stop() == 0
