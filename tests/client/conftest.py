"""A real daemon subprocess per test (tests.support.daemon), and its clients."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.daemon import DaemonProcess, start_daemon


@pytest.fixture
def daemon() -> Iterator[DaemonProcess]:
    """A running daemon; stopped with SIGTERM after the test (exit 0 checked)."""
    d = start_daemon()
    try:
        yield d
    finally:
        assert d.proc is not None
        running = d.proc.poll() is None
        code = d.stop()
        log = d.log()
        shutil.rmtree(d.root, ignore_errors=True)
    if running:
        assert code == 0, f"daemon exited with {code}:\n{log}"
