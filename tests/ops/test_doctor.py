"""atlasd doctor: one line per check, the fix with each problem, exit 1 on a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from atlasd.doctor.checks import skew_check
from tests.daemon.conftest import NO_SPOOL
from tests.support.convex_double import ConvexDouble
from tests.support.daemon import DaemonProcess, clean_env, running_daemon


def doctor(env: Mapping[str, str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    """Run `atlasd doctor --json` with ``env``; its exit code and its checks."""
    done = subprocess.run(
        [sys.executable, "-m", "atlasd", "doctor", "--json", *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def levels(checks: list[dict[str, Any]], name: str) -> list[str]:
    return [c["level"] for c in checks if c["name"] == name]


def env_of(d: DaemonProcess, **extra: str) -> dict[str, str]:
    return {"ATLASD_SOCKET": str(d.socket), "ATLASD_DATA_DIR": str(d.data_dir), **extra}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ad-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_healthy_offline_daemon_passes_every_check() -> None:
    """With the daemon running offline, nothing fails and the exit code is 0."""
    with running_daemon(args=NO_SPOOL) as d:
        code, checks = doctor(env_of(d))
    assert code == 0, checks
    assert levels(checks, "config") == ["ok"]
    assert levels(checks, "socket") == ["ok"]
    assert levels(checks, "database") == ["ok"]
    assert levels(checks, "sync") == ["ok"]
    assert not [c for c in checks if c["level"] == "fail"]


def test_a_daemon_that_is_not_running_fails_with_how_to_start_it(short_dir: Path) -> None:
    """No socket: the socket check fails, names the path and the command that starts it."""
    code, checks = doctor(
        {"ATLASD_SOCKET": str(short_dir / "a.sock"), "ATLASD_DATA_DIR": str(short_dir / "d")}
    )
    assert code == 1
    [socket] = [c for c in checks if c["name"] == "socket"]
    assert socket["level"] == "fail"
    assert str(short_dir / "a.sock") in socket["message"]
    assert "atlasd serve" in socket["fix"]


def test_the_http_actions_url_in_convex_url_fails_with_the_right_url(short_dir: Path) -> None:
    """CONVEX_URL given as NAME.convex.site is named, with the .convex.cloud form as fix."""
    code, checks = doctor(
        {"CONVEX_URL": "https://happy-otter-1.convex.site", "ATLASD_DATA_DIR": str(short_dir)}
    )
    assert code == 1
    assert levels(checks, "config") == ["fail"]
    assert "convex.cloud" in checks[0]["fix"]


def test_a_setting_outside_its_choices_names_them(short_dir: Path) -> None:
    """An enum setting with a wrong value fails, naming the variable and its choices."""
    code, checks = doctor({"ATLASD_SYNCHRONOUS": "OFF", "ATLASD_DATA_DIR": str(short_dir)})
    assert code == 1
    assert "ATLASD_SYNCHRONOUS" in checks[0]["message"]
    assert "FULL, NORMAL" in checks[0]["message"]


def test_a_url_without_a_token_fails_and_a_token_without_a_url_warns(short_dir: Path) -> None:
    """Sync half-configured either way is reported, the missing half named."""
    base = {"ATLASD_DATA_DIR": str(short_dir), "ATLASD_SOCKET": str(short_dir / "a.sock")}
    _, checks = doctor({**base, "ATLASD_INGEST_URL": "https://x.convex.site/atlasd/ingest"})
    assert levels(checks, "config") == ["fail"]
    assert "no ingest token" in checks[0]["message"]
    _, checks = doctor({**base, "ATLASD_INGEST_TOKEN": "t0ken"})
    assert levels(checks, "config") == ["warn"]
    assert "CONVEX_URL" in checks[0]["fix"]


def test_a_data_dir_others_can_write_fails(short_dir: Path) -> None:
    """A data dir writable by other users is a failure with the chmod that fixes it."""
    data = short_dir / "data"
    data.mkdir()
    os.chmod(data, 0o777)
    code, checks = doctor({"ATLASD_DATA_DIR": str(data), "ATLASD_SOCKET": str(short_dir / "s")})
    [check] = [c for c in checks if c["name"] == "data_dir"]
    assert check["level"] == "fail"
    assert check["fix"] == f"chmod 700 {data}"
    assert code == 1


def test_a_corrupted_database_page_fails_the_database_check() -> None:
    """quick_check finds a page overwritten on disk; the fix says to restore a backup."""
    with running_daemon(args=NO_SPOOL, keep=True) as d:
        for i in range(300):
            d.request("append", stream=f"s{i % 7}", type="T", data={"pad": "x" * 200, "i": i})
    db = d.data_dir / "atlasd.db"
    with db.open("r+b") as fh:
        fh.seek(4096 * 3)
        fh.write(b"\xa5" * 4096)
    code, checks = doctor(env_of(d))
    shutil.rmtree(d.root, ignore_errors=True)
    assert levels(checks, "database") == ["fail"]
    assert code == 1


def test_a_refused_spool_file_is_a_warning(short_dir: Path) -> None:
    """Files in spool/rejected are counted with where their reasons are."""
    rejected = short_dir / "data" / "spool" / "rejected"
    rejected.mkdir(parents=True)
    (rejected / "x.ndjson").write_text("not json\n")
    (rejected / "x.ndjson.reason").write_text("line 1: not JSON\n")
    _, checks = doctor(
        {"ATLASD_DATA_DIR": str(short_dir / "data"), "ATLASD_SOCKET": str(short_dir / "s")}
    )
    spool = [c for c in checks if c["name"] == "spool"]
    assert [c["level"] for c in spool] == ["warn"]
    assert "1 spool files were refused" in spool[0]["message"]


def test_the_remote_accepts_the_token_and_the_clocks_agree(convex_double: ConvexDouble) -> None:
    """Against a reachable remote with the right token: remote ok, clock ok."""
    sync = {
        "ATLASD_INGEST_URL": convex_double.ingest_url,
        "ATLASD_INGEST_TOKEN": convex_double.token,
    }
    with running_daemon(args=NO_SPOOL, env=sync) as d:
        code, checks = doctor(env_of(d, **sync))
    assert levels(checks, "remote") == ["ok"]
    assert levels(checks, "clock") == ["ok"]
    assert code == 0, checks


def test_a_wrong_token_fails_the_remote_check(convex_double: ConvexDouble, short_dir: Path) -> None:
    """The remote refusing the token is a failure that says how to set it."""
    _, checks = doctor(
        {
            "ATLASD_DATA_DIR": str(short_dir),
            "ATLASD_SOCKET": str(short_dir / "s"),
            "ATLASD_INGEST_URL": convex_double.ingest_url,
            "ATLASD_INGEST_TOKEN": "not-the-token",
        }
    )
    [remote] = [c for c in checks if c["name"] == "remote"]
    assert remote["level"] == "fail"
    assert "refuses the token" in remote["message"]
    assert "not-the-token" not in json.dumps(checks)


@pytest.mark.parametrize(
    ("skew", "level"), [(0.4, "ok"), (-45.0, "warn"), (45.0, "warn"), (400.0, "fail")]
)
def test_clock_skew_levels(skew: float, level: str) -> None:
    """Within 30 s is fine, beyond a warning, beyond five minutes a failure."""
    check = skew_check(1_000_000.0 + skew, 1_000_000.0)
    assert check.level == level
