"""systemd without systemd: sd_notify messages, watchdog pings, socket activation."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from atlasd.daemon.systemd import (
    Notifier,
    extending_start,
    inherited_listener,
    watchdog_interval,
)
from atlasd.errors import Unavailable
from tests.daemon.conftest import NO_SPOOL
from tests.support.daemon import DaemonProcess, clean_env

# Runs in the child: puts the passed socket on fd 3 and sets LISTEN_PID to its own pid,
# as systemd does, then becomes the daemon.
_ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.executable, [sys.executable, "-m", "atlasd.daemon", *sys.argv[2:]])
"""


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket in the abstract namespace, as NOTIFY_SOCKET names it ('@...')."""
    name = f"atlasd-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(20)
    yield "@" + name, sock
    sock.close()


def _messages_until(sock: socket.socket, wanted: str) -> list[str]:
    seen: list[str] = []
    while True:
        message = sock.recv(4096).decode()
        seen.append(message)
        if wanted in message.split("\n"):
            return seen


def test_socket_activation_readiness_watchdog_and_stopping(
    short_dir: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    """Under a systemd-like parent the daemon serves on the inherited socket, sends READY=1
    once serving with a STATUS= naming that socket, a new STATUS= when the log changed,
    WATCHDOG=1 pings, STOPPING=1 on SIGTERM, and leaves the socket file alone."""
    address, notifications = notify_socket
    listen_path = short_dir / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(listen_path))
    listener.listen(16)
    env = clean_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"})
    d = DaemonProcess(
        root=short_dir,
        socket=listen_path,
        data_dir=short_dir / "data",
        args=[*NO_SPOOL, "--socket", str(short_dir / "unused.sock")],
        env=env,
    )
    command = [
        sys.executable,
        "-c",
        _ACTIVATE,
        str(listener.fileno()),
        "--socket",
        str(short_dir / "unused.sock"),
        "--data-dir",
        str(d.data_dir),
        *NO_SPOOL,
    ]
    try:
        d.start(wait=False, command=command, pass_fds=(listener.fileno(),))
        ready = _messages_until(notifications, "READY=1")
        assert any(m.startswith("READY=1") for m in ready)
        # The socket actually served is the inherited one, not --socket.
        assert f"STATUS=serving on {listen_path}, last_seq 0, sync disabled, pending 0" in (
            ready[-1].split("\n")
        )
        d.wait_ready()
        listener.close()  # only the daemon holds it now
        assert d.request("append", stream="s", type="T", data={})["ok"]
        assert not (short_dir / "unused.sock").exists()
        current = f"STATUS=serving on {listen_path}, last_seq 1, sync disabled, pending 1"
        updated = _messages_until(notifications, current)
        # An unchanged status is not sent again: the only STATUS= since READY is the new one.
        statuses = [line for m in updated for line in m.split("\n") if line.startswith("STATUS=")]
        assert statuses == [current]
        pings = [m for m in _messages_until(notifications, "WATCHDOG=1") if m == "WATCHDOG=1"]
        pings += [m for m in _messages_until(notifications, "WATCHDOG=1") if m == "WATCHDOG=1"]
        assert len(pings) >= 2
        d.send_signal(signal.SIGTERM)
        assert any("STOPPING=1" in m for m in _messages_until(notifications, "STOPPING=1"))
        assert d.stop() == 0
        assert listen_path.exists()
    finally:
        listener.close()
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


def test_notifier_sends_to_a_path_socket(short_dir: Path) -> None:
    """NOTIFY_SOCKET as a filesystem path receives the datagram."""
    path = short_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        assert notifier.notify("READY=1", "STATUS=ok")
        notifier.close()
        assert sock.recv(100) == b"READY=1\nSTATUS=ok"


def test_notifier_without_notify_socket_does_nothing() -> None:
    """Outside systemd notify() is a no-op that reports False."""
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False


def test_watchdog_interval_is_half_the_timeout_for_this_pid() -> None:
    """WATCHDOG_USEC gives pings at half the timeout, unless WATCHDOG_PID names another pid."""
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None


def test_listen_fds_for_another_pid_are_ignored_and_unset() -> None:
    """LISTEN_PID of another process: no socket is taken, and the variables are removed."""
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"}
    assert inherited_listener(env) is None
    assert env == {}


def test_the_start_timeout_is_extended_while_the_event_log_opens(
    short_dir: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    """Before READY=1 the daemon asks systemd for more start-up time while it opens the
    log (a schema migration may take minutes), and says so in STATUS=."""
    address, notifications = notify_socket
    d = DaemonProcess(
        root=short_dir,
        socket=short_dir / "d.sock",
        data_dir=short_dir / "data",
        args=NO_SPOOL,
        env=clean_env({"NOTIFY_SOCKET": address}),
    )
    try:
        d.start(wait=False)
        before_ready = _messages_until(notifications, "READY=1")[:-1]
        lines = [line for m in before_ready for line in m.split("\n")]
        assert any(line.startswith("EXTEND_TIMEOUT_USEC=") for line in lines), before_ready
        assert "STATUS=opening the event log" in lines
        assert d.stop() == 0
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


async def test_start_extensions_repeat_until_the_step_ends(short_dir: Path) -> None:
    """While a start-up step runs, EXTEND_TIMEOUT_USEC= comes again before the time it
    asked for runs out; once the step is over none follow."""
    path = short_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        async with extending_start(notifier, "busy", every=0.05):
            await anyio.sleep(0.3)
        await anyio.sleep(0.2)
        notifier.close()
        sent = []
        with contextlib.suppress(BlockingIOError):
            while True:
                sent.append(sock.recv(200).decode())
    assert len(sent) >= 4
    assert set(sent) == {f"EXTEND_TIMEOUT_USEC={int(0.05 * 3e6)}\nSTATUS=busy"}
    assert len(sent) <= 8


async def test_a_failing_start_up_step_raises_its_own_error(short_dir: Path) -> None:
    """The step's exception leaves the block as it is (the daemon turns it into its
    start-up message), not inside an exception group."""
    path = short_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        with pytest.raises(Unavailable, match="newer"):
            async with extending_start(notifier, "opening the event log"):
                raise Unavailable("the database has schema 9, newer than this atlasd knows")
        notifier.close()
