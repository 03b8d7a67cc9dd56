"""`make run` installs only what running needs and passes ARGS to `atlasd serve`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture
def venv() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="atlasd-venv-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _dry_run(venv: Path, *args: str) -> list[str]:
    """The commands ``make run`` would execute with ``VENV`` at ``venv``."""
    assert MAKE is not None
    done = subprocess.run(
        [MAKE, "--no-print-directory", "-n", "-C", str(ROOT), "run", f"VENV={venv}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_a_fresh_checkout_installs_atlasd_without_any_extra(venv: Path) -> None:
    """No stamps: the virtualenv gets `pip install -e .`, never the test extras."""
    commands = _dry_run(venv)
    installs = [c for c in commands if "pip install" in c]
    assert installs == [f"{venv}/bin/python -m pip install --quiet -e ."]
    assert commands[-1] == f"{venv}/bin/atlasd serve "


def test_args_reach_atlasd_serve(venv: Path) -> None:
    """`make run ARGS=...` appends the flags to the serve command."""
    commands = _dry_run(venv, "ARGS=--log-level debug --no-spool")
    assert commands[-1] == f"{venv}/bin/atlasd serve --log-level debug --no-spool"


def test_after_the_full_install_run_installs_nothing_more(venv: Path) -> None:
    """`make test`'s install covers running: with its stamp fresh, only the serve runs."""
    for stamp in (".installed", ".runtime"):
        (venv / stamp).touch()
        newer = (ROOT / "pyproject.toml").stat().st_mtime + 10
        os.utime(venv / stamp, (newer, newer))
    assert _dry_run(venv) == [f"{venv}/bin/atlasd serve "]
