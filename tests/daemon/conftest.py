"""Fixtures for the daemon's tests: real daemon subprocesses on short temp sockets."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess, running_daemon

#: The spool watcher takes ~2 s to stop (watchfiles); tests that do not need it skip it.
NO_SPOOL = ("--no-spool",)


@pytest.fixture
def daemon() -> Iterator[DaemonProcess]:
    """A daemon (spool off), stopped with SIGTERM (exit 0 checked) after the test."""
    with running_daemon(args=NO_SPOOL) as d:
        yield d


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory under /tmp with a short path (for sockets)."""
    path = Path(tempfile.mkdtemp(prefix="atlasd-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def toml_config(path: Path, **fields: Any) -> Path:
    """Write a TOML config with top-level scalar fields; returns its path."""
    lines = []
    for key, value in fields.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def event(i: int, stream: str = "s", **extra: Any) -> dict[str, Any]:
    """A minimal valid append request body."""
    return {"stream": stream, "type": "Tick", "data": {"i": i}, **extra}
