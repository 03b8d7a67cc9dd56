"""The systemd unit files: clean under ``systemd-analyze verify``, and consistent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package: systemd)"
)


def _atlasd_command() -> str:
    """The installed ``atlasd`` script of this environment (it must exist for verify)."""
    candidate = Path(sys.executable).with_name("atlasd")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("atlasd")
    assert found, "the atlasd command is not installed in this environment"
    return found


def _render(unit_dir: Path, out: Path, exec_path: str) -> list[Path]:
    """Copy the units, pointing ExecStart at an existing ``atlasd``."""
    rendered = []
    for name in ("atlasd.service", "atlasd.socket"):
        text = (unit_dir / name).read_text()
        text = text.replace("/usr/local/bin/atlasd", exec_path).replace(
            "%h/.local/bin/atlasd", exec_path
        )
        target = out / name
        target.write_text(text)
        rendered.append(target)
    return rendered


def _verify(
    paths: list[Path], *, user: bool, runtime_dir: Path
) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    cmd = [ANALYZE, *(["--user"] if user else []), "verify", "--man=no", *map(str, paths)]
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def _settings(path: Path) -> dict[str, list[str]]:
    """``Key -> [values]`` over all sections (keys may repeat in units)."""
    found: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="sdv-"))
    (path / "run").mkdir(mode=0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_analyze
def test_system_units_verify_without_any_complaint(workdir: Path) -> None:
    """systemd-analyze verify reports nothing at all on the system service and socket."""
    paths = _render(UNITS, workdir, _atlasd_command())
    result = _verify(paths, user=False, runtime_dir=workdir / "run")
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


@needs_analyze
def test_user_units_verify_without_any_complaint(workdir: Path) -> None:
    """systemd-analyze --user verify reports nothing on the user service and socket."""
    paths = _render(UNITS / "user", workdir, _atlasd_command())
    result = _verify(paths, user=True, runtime_dir=workdir / "run")
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


@needs_analyze
def test_verification_catches_a_broken_unit(workdir: Path) -> None:
    """The check fails on a misspelt setting, so a clean run above means something."""
    paths = _render(UNITS, workdir, _atlasd_command())
    service = paths[0]
    service.write_text(service.read_text().replace("Restart=on-failure", "Restart=onfailure"))
    result = _verify(paths, user=False, runtime_dir=workdir / "run")
    assert "onfailure" in result.stdout + result.stderr


def test_system_service_is_a_hardened_notify_service() -> None:
    """The system service uses sd_notify, the watchdog, its own user and the hardening set."""
    s = _settings(UNITS / "atlasd.service")
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["30"]
    assert s["Restart"] == ["on-failure"]
    assert s["User"] == ["atlasd"]
    assert s["StateDirectory"] == ["atlasd"]
    assert s["RuntimeDirectory"] == ["atlasd"]
    assert s["ExecStart"] == ["/usr/local/bin/atlasd serve"]
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "RestrictRealtime",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
    ):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["SystemCallArchitectures"] == ["native"]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert s["LoadCredential"][0].startswith("ingest-token:")


def test_units_agree_on_the_socket_and_data_dir() -> None:
    """The socket unit listens where the service tells the daemon (and clients) to look."""
    service = _settings(UNITS / "atlasd.service")
    socket = _settings(UNITS / "atlasd.socket")
    assert socket["ListenStream"] == ["/run/atlasd/atlasd.sock"]
    assert "ATLASD_SOCKET=%t/atlasd/atlasd.sock" in service["Environment"]  # %t = /run
    assert "ATLASD_DATA_DIR=%S/atlasd" in service["Environment"]  # %S = /var/lib
    assert socket["SocketMode"] == ["0660"]
    assert socket["SocketGroup"] == ["atlasd"]
    user_service = _settings(UNITS / "user" / "atlasd.service")
    user_socket = _settings(UNITS / "user" / "atlasd.socket")
    assert user_socket["ListenStream"] == ["%t/atlasd/atlasd.sock"]
    assert "ATLASD_SOCKET=%t/atlasd/atlasd.sock" in user_service["Environment"]
    assert user_socket["SocketMode"] == ["0600"]


def test_the_root_default_socket_is_where_the_system_socket_listens() -> None:
    """A root client with nothing set finds the system socket (docs/protocol.md)."""
    from atlasd.config import default_socket_path

    if os.geteuid() != 0:
        pytest.skip("the /run default applies to root only")
    assert str(default_socket_path({})) == _settings(UNITS / "atlasd.socket")["ListenStream"][0]


def test_system_service_does_not_hide_peers_from_the_daemon() -> None:
    """No private user namespace (peers would be uid 65534) and other users'
    /proc/PID/status stays readable (supplementary groups come from there)."""
    s = _settings(UNITS / "atlasd.service")
    assert s.get("PrivateUsers", ["no"]) == ["no"]
    assert s.get("ProtectProc", ["default"]) == ["default"]
    assert s.get("ProcSubset", ["all"]) in (["pid"], ["all"])


def test_documentation_points_at_files_the_install_steps_create() -> None:
    """Every unit's Documentation= is a file: URL that docs/operations.md installs."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    for unit in (*UNITS.glob("atlasd.*"), *(UNITS / "user").glob("atlasd.*")):
        if unit.suffix not in (".service", ".socket"):
            continue
        for url in _settings(unit)["Documentation"]:
            assert url.startswith(("file:///", "file://%h/")), (unit, url)
            path = url.removeprefix("file://").replace("%h", "~")
            assert f"docs/operations.md {path}" in doc, (unit, path)
