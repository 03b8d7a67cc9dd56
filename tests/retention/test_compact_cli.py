"""`atlasd compact` on the command line: progress, the size option, its refusals."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.client.test_cli_output import on_terminal, piped
from tests.reading.test_export_import import _generated
from tests.support.daemon import DaemonProcess, start_daemon


@pytest.fixture
def stopped() -> Iterator[DaemonProcess]:
    """The data dir of a stopped daemon holding 300 events."""
    daemon = start_daemon(args=("--no-spool",))
    try:
        with daemon.connect() as conn:
            assert conn.request("append_batch", events=[_generated(i) for i in range(300)])["ok"]
        assert daemon.stop() == 0
        yield daemon
    finally:
        shutil.rmtree(daemon.root, ignore_errors=True)


def test_compact_draws_its_progress_on_a_terminal_and_nothing_in_pipes(
    stopped: DaemonProcess,
) -> None:
    """On a terminal compact shows the bar in events moved; piped it prints only the
    report on stdout, nothing on stderr."""
    data = str(stopped.data_dir)
    code, text = on_terminal(
        stopped, "compact", "--data-dir", data, "--past-bytes", "1", NO_COLOR="1"
    )
    assert code == 0, text
    assert "compact" in text
    assert "300/300 events" in text
    assert "archived 300 events" in text
    again = piped(stopped, "compact", "--data-dir", data, "--older-than-days", "0")
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert again.stdout.startswith("archived 0 events")


def test_compact_refuses_a_bad_size_naming_the_option(stopped: DaemonProcess) -> None:
    """--past-bytes that is not a size exits 2 with an error naming it; nothing moves."""
    data = str(stopped.data_dir)
    bad = piped(stopped, "compact", "--data-dir", data, "--past-bytes", "huge")
    assert bad.returncode == 2
    assert "--past-bytes" in bad.stderr
    report = piped(stopped, "compact", "--data-dir", data, "--past-bytes", "1GiB", "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["archived"] == 0
