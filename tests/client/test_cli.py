"""The client subcommands as a user runs them: subprocesses, exit codes, output."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from atlasd.client import Client
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess, clean_env, start_daemon

WAIT_S = 20.0


def atlasd(
    *args: str, daemon: DaemonProcess | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m atlasd ARGS`` with the daemon's socket and data dir in its environment."""
    env = clean_env(
        {"ATLASD_SOCKET": str(daemon.socket), "ATLASD_DATA_DIR": str(daemon.data_dir)}
        if daemon
        else {}
    )
    return subprocess.run(
        [sys.executable, "-m", "atlasd", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


def _append(daemon: DaemonProcess, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Fill the log quickly through the client library (the CLI is what is tested)."""
    with Client(daemon.socket, spool=False) as client:
        client.append_batch([NewEvent(stream=s, type=t, data=d) for s, t, d in events])


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_emit_appends_and_reports_seq(daemon: DaemonProcess) -> None:
    """emit appends one event; --json prints seq, version and the event id."""
    out = _json(atlasd("emit", "tool:cli", "Ran", '{"ok": true}', "--json", daemon=daemon))
    assert (out["seq"], out["version"], out["spooled"]) == (1, 1, False)
    human = atlasd("emit", "tool:cli", "Ran", "--data", "-", stdin='{"n": 2}', daemon=daemon)
    assert human.returncode == 0
    assert "appended seq=2 version=2" in human.stdout


def test_emit_reads_the_payload_from_a_file(daemon: DaemonProcess, tmp_path: Path) -> None:
    """--data @FILE takes the payload from a file."""
    payload = tmp_path / "p.json"
    payload.write_text('{"from": "file"}')
    atlasd("emit", "tool:f", "T", "--data", f"@{payload}", daemon=daemon)
    events = [json.loads(line) for line in atlasd("tail", "--json", daemon=daemon).stdout.split()]
    assert events[0]["data"] == {"from": "file"}


@pytest.mark.parametrize(
    "args",
    [
        ("emit", "tool:x", "T", "{not json"),
        ("emit", "tool:x", "T", "[1, 2]"),
        ("emit", "tool:x", "T", "{}", "--data", "{}"),
        ("emit", "tool:x"),
        ("query", "tasks", "--filter", "nocolumn"),
        ("query", "tasks", "--filter", "phase:=not-json"),
        ("tail", "-n", "-1"),
    ],
)
def test_bad_usage_exits_2_and_appends_nothing(
    daemon: DaemonProcess, args: tuple[str, ...]
) -> None:
    """Malformed arguments or payloads exit 2 with a message and change nothing."""
    result = atlasd(*args, daemon=daemon)
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip()
    assert _json(atlasd("status", "--json", daemon=daemon))["last_seq"] == 0


def test_daemon_refusals_exit_1(daemon: DaemonProcess) -> None:
    """An invalid event, a version conflict and an unknown view exit 1 with the code."""
    invalid = atlasd("emit", "tool:x", "bad type", "{}", daemon=daemon)
    assert invalid.returncode == 1
    assert "invalid_value" in invalid.stderr
    atlasd("emit", "tool:v", "T", "{}", daemon=daemon)
    conflict = atlasd("emit", "tool:v", "T", "{}", "--expected-version", "0", daemon=daemon)
    assert conflict.returncode == 1
    assert "version_conflict" in conflict.stderr
    assert atlasd("query", "nope", daemon=daemon).returncode == 1


def test_without_a_daemon_emit_spools_and_the_rest_exit_3(daemon: DaemonProcess) -> None:
    """Offline, emit spools (exit 0), --no-spool and reads exit 3; the spool lands on start."""
    assert daemon.stop() == 0
    spooled = atlasd("emit", "tool:o", "Offline", '{"i": 1}', daemon=daemon)
    assert spooled.returncode == 0
    assert "spooled" in spooled.stdout
    assert atlasd("emit", "tool:o", "T", "{}", "--no-spool", daemon=daemon).returncode == 3
    assert (
        atlasd("emit", "tool:o", "T", "{}", "--expected-version", "0", daemon=daemon).returncode
        == 3
    )
    for args in (("status",), ("tail",), ("query", "builds"), ("export",)):
        assert atlasd(*args, daemon=daemon).returncode == 3, args
    daemon.start()
    deadline = time.monotonic() + WAIT_S
    while _json(atlasd("status", "--json", daemon=daemon))["last_seq"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [event] = [
        json.loads(x) for x in atlasd("tail", "--json", daemon=daemon).stdout.split("\n") if x
    ]
    assert (event["type"], event["data"]) == ("Offline", {"i": 1})


def test_status_prints_the_contract_fields(daemon: DaemonProcess) -> None:
    """status --json has the contract's fields; the table names them too."""
    status = _json(atlasd("status", "--json", daemon=daemon))
    assert {"origin", "last_seq", "events", "streams", "sync", "projections", "db_bytes"} <= set(
        status
    )
    human = atlasd("status", daemon=daemon).stdout
    assert status["origin"] in human
    assert "sync.state" in human


def test_query_filters_and_prints_rows(daemon: DaemonProcess) -> None:
    """query applies string and JSON filters and tags, as JSON or a table."""
    for pid, lang, tags in (
        ("p1", "py", ["a", "b"]),
        ("p2", "py", ["a"]),
        ("p3", "ts", ["a", "b"]),
    ):
        data = {
            "pattern_id": pid,
            "name": pid,
            "description": "",
            "code": "",
            "language": lang,
            "tags": tags,
        }
        atlasd("emit", f"pattern:{pid}", "PatternStored", json.dumps(data), daemon=daemon)
    rows = _json(
        atlasd(
            "query", "patterns", "--filter", "language=py", "--tag", "b", "--json", daemon=daemon
        )
    )
    assert [r["pattern_id"] for r in rows] == ["p1"]
    desc = _json(
        atlasd("query", "patterns", "--order", "desc", "--limit", "2", "--json", daemon=daemon)
    )
    assert [r["pattern_id"] for r in desc] == ["p3", "p2"]
    table = atlasd("query", "patterns", daemon=daemon).stdout.splitlines()
    assert table[0].split()[0] == "pattern_id"
    assert len(table) == 4
    task = {
        "build_id": "b",
        "task_id": "t",
        "title": "x",
        "agent": "a",
        "status": "done",
        "dependencies": [],
        "phase": 2,
    }
    atlasd("emit", "build:b", "TaskLogged", json.dumps(task), daemon=daemon)
    assert (
        len(_json(atlasd("query", "tasks", "--filter", "phase:=2", "--json", daemon=daemon))) == 1
    )
    # A string where the column holds numbers is refused by the daemon, not silently empty.
    refused = atlasd("query", "tasks", "--filter", "phase=2", "--json", daemon=daemon)
    assert refused.returncode == 1
    assert "bad_request" in refused.stderr


def test_tail_shows_the_last_events_and_follows(daemon: DaemonProcess) -> None:
    """tail prints the last N (filtered) events; tail -f then prints new ones live."""
    _append(daemon, [(f"tool:{i % 2}", "Tick", {"i": i}) for i in range(15)])
    last = atlasd("tail", "-n", "3", "--json", daemon=daemon).stdout.splitlines()
    assert [json.loads(x)["data"]["i"] for x in last] == [12, 13, 14]
    odd = atlasd("tail", "-n", "2", "--stream", "tool:1", "--json", daemon=daemon).stdout.split()
    assert [json.loads(x)["data"]["i"] for x in odd] == [11, 13]
    assert len(atlasd("tail", "--from-seq", "5", daemon=daemon).stdout.splitlines()) == 10
    env = clean_env({"ATLASD_SOCKET": str(daemon.socket)})
    follower = subprocess.Popen(
        [sys.executable, "-m", "atlasd", "tail", "-f", "--from-seq", "15", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        # Whether the follower reads it or gets it live, seq 16 is printed once.
        atlasd("emit", "tool:live", "Live", '{"x": 1}', daemon=daemon)
        assert follower.stdout is not None
        line = follower.stdout.readline()
        assert (json.loads(line)["stream"], json.loads(line)["seq"]) == ("tool:live", 16)
    finally:
        follower.terminate()
        follower.communicate(timeout=30)


def test_export_then_import_round_trips_and_reimport_changes_nothing(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """Events exported from one daemon import into another once, with their ids kept."""
    _append(daemon, [(f"tool:{i % 3}", "E", {"i": i}) for i in range(25)])
    dump = tmp_path / "events.ndjson"
    assert atlasd("export", "-o", str(dump), daemon=daemon).returncode == 0
    stdout_dump = atlasd("export", daemon=daemon).stdout
    assert stdout_dump == dump.read_text()
    source = [json.loads(x) for x in dump.read_text().splitlines()]
    assert [e["seq"] for e in source] == list(range(1, 26))
    assert {"event_id", "hash", "origin", "recorded_at", "meta"} <= set(source[0])
    partial = atlasd("export", "--from-seq", "20", daemon=daemon).stdout.splitlines()
    assert len(partial) == 5

    other = start_daemon()
    try:
        first = _json(atlasd("import", str(dump), "--batch-size", "7", "--json", daemon=other))
        assert first == {"events": 25, "appended": 25, "duplicates": 0}
        again = _json(atlasd("import", str(dump), "--json", daemon=other))
        assert again == {"events": 25, "appended": 0, "duplicates": 25}
        copied = [json.loads(x) for x in atlasd("export", daemon=other).stdout.splitlines()]
    finally:
        assert other.stop() == 0
    assert [(e["event_id"], e["stream"], e["data"]) for e in copied] == [
        (e["event_id"], e["stream"], e["data"]) for e in source
    ]


def test_import_of_lines_without_ids_is_idempotent(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Lines without event ids get ids derived from the file, so a re-import adds nothing."""
    path = tmp_path / "plain.ndjson"
    path.write_text(
        "".join(
            json.dumps({"stream": "s:1", "type": "T", "data": {"i": i}}) + "\n" for i in range(3)
        )
    )
    assert _json(atlasd("import", str(path), "--json", daemon=daemon))["appended"] == 3
    assert _json(atlasd("import", str(path), "--json", daemon=daemon))["duplicates"] == 3


def test_import_of_a_malformed_file_exits_2_and_appends_nothing(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """A file with an unreadable line is refused before anything is sent."""
    path = tmp_path / "bad.ndjson"
    path.write_text('{"stream": "s", "type": "T", "data": {}}\nnot json\n')
    result = atlasd("import", str(path), daemon=daemon)
    assert result.returncode == 2
    assert "line 2" in result.stderr
    assert atlasd("import", str(tmp_path / "missing.ndjson"), daemon=daemon).returncode == 2
    assert _json(atlasd("status", "--json", daemon=daemon))["last_seq"] == 0


def test_backup_copies_a_consistent_log_while_the_daemon_runs(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """backup writes a copy that passes integrity_check and holds every event; no overwrite."""
    _append(daemon, [("tool:b", "B", {"i": i}) for i in range(10)])
    dest = tmp_path / "copy.db"
    info = _json(atlasd("backup", str(dest), "--json", daemon=daemon))
    assert (info["events"], info["last_seq"], info["path"]) == (10, 10, str(dest))
    with sqlite3.connect(dest) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (10,)
    assert not Path(f"{dest}-wal").exists()
    again = atlasd("backup", str(dest), daemon=daemon)
    assert again.returncode == 2
    assert "--force" in again.stderr
    assert atlasd("backup", str(dest), "--force", daemon=daemon).returncode == 0
    into_dir = _json(atlasd("backup", str(tmp_path), "--json", daemon=daemon))
    assert Path(into_dir["path"]).parent == tmp_path
    assert os.path.basename(into_dir["path"]).startswith("atlasd-")


def test_backup_without_an_event_log_exits_1(tmp_path: Path) -> None:
    """Backing up a data dir without a database fails clearly and writes nothing."""
    env_dir = tmp_path / "empty"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "atlasd",
            "backup",
            str(tmp_path / "x.db"),
            "--data-dir",
            str(env_dir),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "no event log" in result.stderr
    assert not (tmp_path / "x.db").exists()
