"""What people and scripts see: tables by display width, colours, local times, progress.

Every test runs the real ``atlasd`` command against a real daemon; a terminal
is a pseudo-terminal (``pty``) whose width is set, a script is a pipe.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from atlasd.client import Client
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess, clean_env, start_daemon
from tests.sync.ingest_server import IngestServer

ATLASD = str(Path(sys.executable).parent / "atlasd")
NAMES = ("名前", "🎉ok", "plain", "ｗｉｄｅ")


def _env(daemon: DaemonProcess, **extra: str) -> dict[str, str]:
    env = clean_env({"ATLASD_SOCKET": str(daemon.socket), "ATLASD_DATA_DIR": str(daemon.data_dir)})
    for name in ("NO_COLOR", "FORCE_COLOR", "TZ", "COLUMNS", "LINES"):
        env.pop(name, None)
    env.update(extra)
    return env


def piped(daemon: DaemonProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a script runs it: stdout and stderr are pipes."""
    return subprocess.run(
        [ATLASD, *args], capture_output=True, text=True, env=_env(daemon, **env), timeout=60
    )


def on_terminal(daemon: DaemonProcess, *args: str, **env: str) -> tuple[int, str]:
    """The command on a 160-column terminal (stdout and stderr); its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(
        [ATLASD, *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=_env(daemon, TERM="xterm-256color", **env),
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n")


def _patterns(daemon: DaemonProcess) -> None:
    with Client(daemon.socket, spool=False) as client:
        client.append_batch(
            [
                NewEvent(
                    stream=f"pattern:p{i}",
                    type="PatternStored",
                    data={
                        "pattern_id": f"p{i}",
                        "name": name,
                        "description": "d",
                        "code": "c",
                        "language": "py",
                        "tags": ["a"],
                    },
                )
                for i, name in enumerate(NAMES)
            ]
        )


def _columns_line_up(lines: list[str]) -> None:
    """The ``language`` header and each row's ``py`` start at the same display column."""
    header = next(line for line in lines if "language" in line)
    rows = [line for line in lines if "  py  " in line]
    assert len(rows) == len(NAMES), lines
    start = cell_len(header[: header.index("language")])
    for row in rows:
        assert cell_len(row[: row.index("  py  ") + 2]) == start, (header, row)
    tags = cell_len(header[: header.index("tags")])
    assert {cell_len(row[: row.index('["a"]')]) for row in rows} == {tags}


def test_a_piped_table_aligns_wide_characters_as_plain_text(daemon: DaemonProcess) -> None:
    """Off a terminal, CJK and emoji cells take their display width; no escapes, no padding."""
    _patterns(daemon)
    out = piped(daemon, "query", "patterns")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["pattern_id", "name", "description"]
    assert "\x1b" not in out.stdout
    assert all(line == line.rstrip() for line in lines)
    _columns_line_up(lines)


def test_a_terminal_table_aligns_wide_characters(daemon: DaemonProcess) -> None:
    """On a terminal the rich table lines up CJK, emoji and ASCII rows too."""
    _patterns(daemon)
    code, text = on_terminal(daemon, "query", "patterns", NO_COLOR="1")
    assert code == 0, text
    assert "─" in text  # the header rule: drawn by rich, not the plain form
    _columns_line_up(text.splitlines())


def test_no_color_removes_every_escape_even_on_a_forced_terminal(daemon: DaemonProcess) -> None:
    """Colours show on a terminal; with NO_COLOR set there is not one escape sequence."""
    _patterns(daemon)
    for args in (("status",), ("query", "patterns"), ("sync",)):
        code, coloured = on_terminal(daemon, *args, FORCE_COLOR="1")
        assert code == 0, coloured
        assert "\x1b[" in coloured, args
        code, plain = on_terminal(daemon, *args, FORCE_COLOR="1", NO_COLOR="1")
        assert code == 0, plain
        assert "\x1b" not in plain, args


def _expected(ms: int, zone: dt.tzinfo) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=zone)
    return f"{stamp:%Y-%m-%d %H:%M:%S}"


def test_times_are_local_with_their_zone_and_utc_on_request(daemon: DaemonProcess) -> None:
    """TZ=Asia/Tokyo shows +09:00 wall-clock times; --utc shows UTC; JSON keeps the ms."""
    _patterns(daemon)
    [row] = json.loads(piped(daemon, "query", "patterns", "--limit", "1", "--json").stdout)
    created = row["created_at"]
    assert isinstance(created, int)
    tokyo = dt.timezone(dt.timedelta(hours=9))
    local = piped(daemon, "query", "patterns", "--limit", "1", TZ="Asia/Tokyo").stdout
    assert f"{_expected(created, tokyo)} UTC+09:00" in local
    utc = piped(daemon, "query", "patterns", "--limit", "1", "--utc", TZ="Asia/Tokyo").stdout
    assert f"{_expected(created, dt.UTC)} UTC" in utc
    assert "+09:00" not in utc
    tail = piped(daemon, "tail", "-n", "1", TZ="Asia/Tokyo").stdout
    assert "UTC+09:00" in tail
    assert "UTC+09:00" not in piped(daemon, "tail", "-n", "1", "--utc", TZ="Asia/Tokyo").stdout
    status = piped(daemon, "status", TZ="Asia/Tokyo").stdout
    assert "sync.oldest_pending_ms" in status
    assert "UTC+09:00" in status


def test_progress_shows_on_a_terminal_and_never_in_pipes_or_json(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """import and export draw one progress bar on a terminal; piped or --json, none."""
    dump = tmp_path / "events.ndjson"
    dump.write_text(
        "".join(
            json.dumps({"stream": "s:1", "type": "T", "data": {"i": i}}) + "\n" for i in range(25)
        )
    )
    code, text = on_terminal(daemon, "import", str(dump), NO_COLOR="1")
    assert code == 0, text
    assert "import" in text
    assert "25/25 events" in text
    assert "imported 25 events: 25 appended" in text
    code, text = on_terminal(daemon, "export", "-o", str(tmp_path / "out.ndjson"), NO_COLOR="1")
    assert code == 0, text
    assert "25/25 events" in text
    code, text = on_terminal(daemon, "import", str(dump), "--json", NO_COLOR="1")
    assert code == 0, text
    assert "25/25" not in text
    assert json.loads(text.strip().splitlines()[-1])["duplicates"] == 25
    quiet = piped(daemon, "import", str(dump))
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    exported = piped(daemon, "export", "-o", str(tmp_path / "again.ndjson"))
    assert exported.stderr == f"exported 25 events to {tmp_path / 'again.ndjson'}\n"
    code, text = on_terminal(daemon, "verify", NO_COLOR="1")
    assert code == 0, text
    assert "verify" in text
    assert "25/25 seqs" in text
    assert "25/25" not in on_terminal(daemon, "verify", "--json", NO_COLOR="1")[1]
    assert piped(daemon, "verify").stderr == ""
    code, text = on_terminal(daemon, "backup", str(tmp_path / "copy.db"), NO_COLOR="1")
    assert code == 0, text
    drawn = text.split("backed up 25 events")[0]  # the bar pulses: its size is not known
    assert " backup " in drawn
    assert "━" in drawn


@pytest.fixture
def syncing_daemon() -> Iterator[tuple[DaemonProcess, IngestServer]]:
    with IngestServer() as server:
        daemon = start_daemon(
            args=("--no-spool",),
            env={"ATLASD_INGEST_URL": server.ingest_url, "ATLASD_INGEST_TOKEN": "test-token"},
        )
        try:
            yield daemon, server
        finally:
            code = daemon.stop()
            shutil.rmtree(daemon.root, ignore_errors=True)
        assert code == 0


def _sync(daemon: DaemonProcess) -> dict[str, Any]:
    answer = daemon.request("status")
    assert answer["ok"], answer
    sync: dict[str, Any] = answer["result"]["sync"]
    return sync


def test_sync_rejected_lists_the_quarantine_with_reasons(
    syncing_daemon: tuple[DaemonProcess, IngestServer],
) -> None:
    """--rejected lists each refused event with the remote's reason, and says when more exist."""
    daemon, server = syncing_daemon
    poison = [str(uuid.uuid4()) for _ in range(55)]
    server.state.reject_ids.update(poison)
    events = [{"stream": "note:p", "type": "Note", "data": {"n": i}} for i in range(3)]
    events += [
        {"stream": "note:p", "type": "Note", "data": {"n": 3 + i}, "event_id": event_id}
        for i, event_id in enumerate(poison)
    ]
    assert daemon.request("append_batch", events=events)["ok"]
    deadline = time.monotonic() + 20
    while not (_sync(daemon)["rejected"] == 55 and _sync(daemon)["pending"] == 0):
        assert time.monotonic() < deadline, _sync(daemon)
        time.sleep(0.05)

    listed = piped(daemon, "sync", "--rejected")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].split() == ["seq", "event_id", "code", "message"]
    rows = lines[2:]
    assert len(rows) == 50
    assert rows[0].split()[:2] == ["4", poison[0]]
    assert all("refused by rule" in row for row in rows)
    assert "55 events are quarantined; the first 50 are shown" in listed.stderr

    as_json = json.loads(piped(daemon, "sync", "--rejected", "--json").stdout)
    assert as_json["rejected"] == 55
    assert [q["event_id"] for q in as_json["quarantine"]] == poison[:50]
    assert all(q["message"] for q in as_json["quarantine"])

    both = piped(daemon, "sync", "--rejected", "--retry-rejected")
    assert both.returncode == 2
    assert "--rejected" in both.stderr
