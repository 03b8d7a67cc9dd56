"""A user whose daemon is the system service finds its socket and spool, or is refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.client import Client
from atlasd.client import paths as client_paths
from atlasd.client.paths import SystemPaths, resolve_data_dir, resolve_socket_path
from atlasd.errors import DaemonUnreachable


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, SystemPaths]]:
    """A user's runtime and state dirs and a system service's dirs, all under one temp dir."""
    root = Path(tempfile.mkdtemp(prefix="atlasd-sys-", dir="/tmp"))
    for name in ("ATLASD_SOCKET", "ATLASD_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    (root / "user-run").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(root / "user-run"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "user-state"))
    system = SystemPaths(socket=root / "run" / "atlasd.sock", data_dir=root / "lib")
    monkeypatch.setattr(client_paths, "SYSTEM_PATHS", system)
    yield root, system
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _install_system_service(system: SystemPaths) -> None:
    """What sysusers/tmpfiles and the socket unit leave behind: the two directories."""
    system.socket.parent.mkdir(mode=0o755)
    (system.data_dir / "spool").mkdir(parents=True)
    (system.data_dir / "spool").chmod(0o3770)


def _user_default(root: Path) -> Path:
    return root / "user-run" / "atlasd" / "atlasd.sock"


def test_without_a_system_service_the_users_own_default_is_used(
    machine: tuple[Path, SystemPaths],
) -> None:
    """No /run/atlasd: the user's runtime socket and state dir, even when neither exists."""
    root, system = machine
    assert resolve_socket_path() == _user_default(root)
    if os.geteuid() != 0:
        assert resolve_data_dir() == root / "user-state" / "atlasd"
    assert resolve_data_dir() != system.data_dir


def test_with_the_system_service_installed_a_user_without_a_daemon_uses_it(
    machine: tuple[Path, SystemPaths],
) -> None:
    """/run/atlasd exists and the user's socket does not: system socket and data dir."""
    _root, system = machine
    _install_system_service(system)
    assert resolve_socket_path() == system.socket
    assert resolve_data_dir() == system.data_dir
    assert Client().spool_dir == system.data_dir / "spool"


def test_a_users_own_running_daemon_wins_over_the_system_service(
    machine: tuple[Path, SystemPaths],
) -> None:
    """The user's socket exists: it is used, and the spool stays the user's."""
    root, system = machine
    _install_system_service(system)
    own = _user_default(root)
    own.parent.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(own))
        assert resolve_socket_path() == own
        assert resolve_data_dir() != system.data_dir
    finally:
        listener.close()


def test_explicit_settings_win_over_discovery(
    machine: tuple[Path, SystemPaths], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--socket / ATLASD_SOCKET and --data-dir / ATLASD_DATA_DIR are taken as given."""
    root, system = machine
    _install_system_service(system)
    assert resolve_socket_path(root / "x.sock") == root / "x.sock"
    assert resolve_data_dir(root / "d") == root / "d"
    monkeypatch.setenv("ATLASD_SOCKET", str(root / "y.sock"))
    monkeypatch.setenv("ATLASD_DATA_DIR", str(root / "e"))
    assert resolve_socket_path() == root / "y.sock"
    assert resolve_data_dir() == root / "e"


def test_naming_the_system_socket_brings_the_system_spool_with_it(
    machine: tuple[Path, SystemPaths], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATLASD_SOCKET=/run/atlasd/atlasd.sock alone spools to /var/lib/atlasd/spool."""
    _root, system = machine
    monkeypatch.setenv("ATLASD_SOCKET", str(system.socket))
    assert resolve_data_dir(socket_path=resolve_socket_path()) == system.data_dir


def test_an_offline_append_lands_in_the_system_spool(
    machine: tuple[Path, SystemPaths],
) -> None:
    """The system daemon is down: the event is written where it will look."""
    root, system = machine
    _install_system_service(system)
    with Client() as client:
        outcome = client.append("note:1", "Noted", {"n": 1})
    assert outcome.spooled
    assert Path(outcome.spool_file or "").parent == system.data_dir / "spool"
    assert not (root / "user-state").exists()


def test_a_system_spool_it_cannot_write_fails_loudly_naming_both_places(
    machine: tuple[Path, SystemPaths],
) -> None:
    """The event is refused as unreachable (exit 3), naming the socket and the spool;
    nothing is written in the user's own spool."""
    root, system = machine
    system.socket.parent.mkdir(mode=0o755)
    system.data_dir.write_text("")  # the spool cannot exist, even for root
    with Client() as client, pytest.raises(DaemonUnreachable) as refused:
        client.append("note:1", "Noted", {"n": 1})
    assert str(system.socket) in refused.value.message
    assert str(system.data_dir / "spool") in refused.value.message
    assert not (root / "user-state").exists()


def test_the_emit_command_exits_3_when_the_system_spool_is_not_writable(
    machine: tuple[Path, SystemPaths],
) -> None:
    """`atlasd emit` maps the refusal to exit 3 with one message line."""
    _root, system = machine
    system.socket.parent.mkdir(mode=0o755)
    system.data_dir.write_text("")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from atlasd.client import paths\n"
        "from atlasd.cli import main\n"
        "paths.SYSTEM_PATHS = paths.SystemPaths(\n"
        "    socket=Path(sys.argv[1]), data_dir=Path(sys.argv[2])\n"
        ")\n"
        "sys.exit(main(['emit', 'note:1', 'Noted', '{\"n\": 1}']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script, str(system.socket), str(system.data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert str(system.socket) in done.stderr
    assert str(system.data_dir / "spool") in done.stderr
    assert done.stdout == ""
