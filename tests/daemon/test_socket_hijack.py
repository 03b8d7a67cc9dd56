"""The default socket cannot be hijacked: the daemon refuses a socket directory another
user made, and clients refuse a socket another user serves, before sending anything.

These tests play the other user with uid 65534 (they need root to chown and setuid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from atlasd.client import AsyncClient, Client
from atlasd.errors import Forbidden
from tests.daemon.conftest import NO_SPOOL
from tests.support.daemon import DaemonProcess, start_daemon

OTHER_UID = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter, like /tmp."""
    path = Path(tempfile.mkdtemp(prefix="atlasd-h-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _failed_start(daemon: DaemonProcess) -> str:
    assert daemon.proc is not None
    assert daemon.proc.wait(30) == 1
    daemon.stop()
    return daemon.log()


def test_the_daemon_refuses_a_socket_directory_another_user_created(shared_dir: Path) -> None:
    """A socket directory owned by another uid (made before the daemon started) is refused
    with a message saying why; no socket appears in it."""
    trap = shared_dir / "trap"
    trap.mkdir(mode=0o700)
    os.chown(trap, OTHER_UID, OTHER_UID)
    daemon = start_daemon(shared_dir, socket=trap / "atlasd.sock", args=NO_SPOOL, wait=False)
    log = _failed_start(daemon)
    assert f"owned by uid {OTHER_UID}" in log
    assert "intercept" in log
    assert not (trap / "atlasd.sock").exists()


def test_the_daemon_refuses_a_socket_directory_that_is_a_link(shared_dir: Path) -> None:
    """A symbolic link in place of the socket directory is refused, not followed."""
    real = shared_dir / "real"
    real.mkdir(mode=0o700)
    (shared_dir / "link").symlink_to(real)
    daemon = start_daemon(
        shared_dir, socket=shared_dir / "link" / "atlasd.sock", args=NO_SPOOL, wait=False
    )
    assert "symbolic link" in _failed_start(daemon)
    assert not (real / "atlasd.sock").exists()


class _Impostor:
    """A socket listened on by another user (euid 65534 at listen(), which the kernel
    records for SO_PEERCRED), recording every byte it receives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received = b""
        self.accepted = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX)
        os.seteuid(OTHER_UID)
        try:
            self._sock.bind(str(path))
            self._sock.listen()
        finally:
            os.seteuid(0)
        os.chmod(path, 0o777)  # even a socket anyone may use
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return  # closed before anyone came
        self.accepted.set()
        conn.settimeout(1.0)
        with contextlib.suppress(OSError):
            while chunk := conn.recv(4096):
                self.received += chunk
        conn.close()

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def impostor(shared_dir: Path) -> Iterator[_Impostor]:
    """Another user's socket in a directory of theirs."""
    home = shared_dir / "impostor"
    home.mkdir()
    os.chown(home, OTHER_UID, OTHER_UID)
    fake = _Impostor(home / "atlasd.sock")
    yield fake
    fake.close()


def test_the_blocking_client_sends_nothing_to_a_socket_another_user_serves(
    impostor: _Impostor,
) -> None:
    """Client refuses (forbidden) before its first byte; the impostor receives nothing."""
    with Client(impostor.path, spool=False) as client, pytest.raises(Forbidden, match="65534"):
        client.append("s", "Secret", {"password": "hunter2"})
    assert impostor.accepted.wait(5)
    time.sleep(1.2)
    assert impostor.received == b""


def test_the_async_client_sends_nothing_to_a_socket_another_user_serves(
    impostor: _Impostor,
) -> None:
    """AsyncClient refuses likewise before sending anything."""

    async def attempt() -> None:
        async with AsyncClient(impostor.path, spool=False) as client:
            await client.append("s", "Secret", {"k": 1})

    with pytest.raises(Forbidden, match="not by you"):
        anyio.run(attempt)
    assert impostor.accepted.wait(5)
    time.sleep(1.2)
    assert impostor.received == b""


def test_clients_still_talk_to_their_own_daemon(shared_dir: Path) -> None:
    """The owner check passes for the daemon the user runs (no false refusal)."""
    daemon = start_daemon(shared_dir, args=NO_SPOOL)
    try:
        with Client(daemon.socket, spool=False) as client:
            assert client.ping().origin
    finally:
        assert daemon.stop() == 0
