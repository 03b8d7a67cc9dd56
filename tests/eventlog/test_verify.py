"""verify names what is wrong; rebuild makes views right; both as commands with exit codes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import DataDirLock, EventStore, StoreConfig, rebuild, verify
from atlasd.eventlog.projections.schema import VIEW_SPECS
from tests.eventlog.vectors import VECTOR_DIR, append_vector, load


@pytest.fixture
async def filled(data_dir: Path) -> Path:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, load(VECTOR_DIR / "retries.json"))
    return data_dir


def tamper(data_dir: Path, *statements: str) -> None:
    """Drop the immutability triggers, as an attacker with file access could, and edit."""
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute("DROP TRIGGER events_refuse_update")
    db.execute("DROP TRIGGER events_refuse_delete")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_intact_log_verifies(filled: Path) -> None:
    """A log written by the store verifies with no findings."""
    report = verify(filled)
    assert report.ok
    assert report.findings == []
    assert report.events == 16


def test_altered_event_is_named(filled: Path) -> None:
    """Changing an event's data breaks its hash: verify names its seq."""
    tamper(
        filled,
        "UPDATE events SET payload = replace(payload, '\"duration_ms\":800', '\"duration_ms\":8')"
        " WHERE seq = 4",
    )
    report = verify(filled)
    assert not report.ok
    assert any(f.startswith("seq 4: hash does not match") for f in report.findings)
    assert any("immutability trigger events_refuse_update is missing" in f for f in report.findings)
    assert any("view executions: row" in f and "duration_ms=800" in f for f in report.findings)


def test_deleted_event_is_named(filled: Path) -> None:
    """Deleting an event leaves a gap and a broken chain: verify names both."""
    tamper(filled, "DELETE FROM events WHERE seq = 7")
    findings = verify(filled).findings
    assert "seq 7 missing: seq 8 follows 6" in findings
    assert any(f.startswith("seq 8: hash does not match") for f in findings)
    assert any(f.startswith("seq 8: stream 'build:b2' version 8, expected 7") for f in findings)


def test_altered_view_row_is_named(filled: Path) -> None:
    """A view row that differs from a replay is named with the differing column."""
    db = sqlite3.connect(filled / "atlasd.db")
    db.execute("UPDATE view_tasks SET attempts = 9 WHERE task_id = 't2'")
    db.execute("DELETE FROM view_builds")
    db.commit()
    db.close()
    findings = verify(filled).findings
    assert "view tasks: row b2/t2 differs: attempts=9 (replay: 3)" in findings
    assert "view builds: row b2 is missing" in findings


def test_rebuild_repairs_views(filled: Path) -> None:
    """After rebuild a tampered view equals the replay again."""
    db = sqlite3.connect(filled / "atlasd.db")
    db.execute("UPDATE view_tasks SET attempts = 9")
    db.execute("INSERT INTO view_learnings (row_seq, learning_id) VALUES (999, 'ghost')")
    db.commit()
    db.close()
    assert not verify(filled).ok
    report = rebuild(filled)
    assert report.events == 16
    assert verify(filled).ok


def test_rebuild_refuses_while_the_data_dir_is_locked(filled: Path) -> None:
    """rebuild takes the data dir lock, so it refuses while a daemon holds it."""
    with DataDirLock(filled), pytest.raises(Unavailable, match="another atlasd"):
        rebuild(filled)


async def test_verify_works_while_the_store_is_open(data_dir: Path) -> None:
    """verify reads a consistent snapshot while the store is open and appending."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, load(VECTOR_DIR / "lifecycle.json"))
        report = verify(data_dir)
        assert report.ok, report.findings


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from atlasd.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_command_exit_codes_and_json(filled: Path) -> None:
    """`atlasd verify` exits 0 when all is well and 1 with the findings otherwise."""
    ok = _cli("verify", "--data-dir", str(filled), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    tamper(filled, "DELETE FROM events WHERE seq = 16")
    bad = _cli("verify", "--data-dir", str(filled))
    assert bad.returncode == 1
    assert "immutability trigger" in bad.stdout


def test_rebuild_command_rebuilds_and_reports(filled: Path) -> None:
    """`atlasd rebuild` exits 0 after rebuilding, 1 when there is no database."""
    done = _cli("rebuild", "--data-dir", str(filled))
    assert done.returncode == 0, done.stderr
    assert "16 events" in done.stdout
    missing = _cli("rebuild", "--data-dir", str(filled / "nothing-here"))
    assert missing.returncode == 1
    assert "no atlasd database" in missing.stderr


def test_reordered_events_are_named(filled: Path) -> None:
    """Swapping the contents and hashes of two stored events breaks the chain at both
    places and at the event after them."""
    tamper(
        filled,
        "CREATE TEMP TABLE swap AS SELECT seq, payload, hash FROM events WHERE seq IN (3, 4)",
        "UPDATE events SET payload = (SELECT payload FROM swap WHERE swap.seq = 7 - events.seq),"
        " hash = (SELECT hash FROM swap WHERE swap.seq = 7 - events.seq) WHERE seq IN (3, 4)",
    )
    findings = verify(filled).findings
    assert any(f.startswith("seq 4: hash does not match") for f in findings)
    assert any(f.startswith("seq 3: hash does not match") for f in findings)
    assert any(f.startswith("seq 5: hash does not match") for f in findings)


async def test_empty_log_verifies_and_rebuilds(data_dir: Path) -> None:
    """A data dir with no events verifies clean and rebuilds to empty views."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)):
        pass
    assert verify(data_dir).ok
    assert rebuild(data_dir).events == 0
    assert verify(data_dir).ok


def _edit(data_dir: Path, *statements: str) -> None:
    """Edit tables the immutability triggers do not guard (views, bookkeeping)."""
    db = sqlite3.connect(data_dir / "atlasd.db")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_a_view_checkpoint_behind_the_log_is_named_alone(filled: Path) -> None:
    """A view whose checkpoint disagrees with the log is a finding, rows untouched."""
    _edit(filled, "UPDATE projections SET checkpoint = 5 WHERE name = 'learnings'")
    report = verify(filled)
    assert report.findings == ["view learnings: checkpoint 5, log ends at 16"]


def test_events_of_another_origin_are_named_alone(filled: Path) -> None:
    """Events whose origin is not the data dir's are findings, hashes still intact."""
    _edit(filled, "UPDATE meta SET value = 'another-origin' WHERE key = 'origin'")
    findings = verify(filled).findings
    assert findings
    assert all("is not this data dir's" in f or f.startswith("body:") for f in findings)
    assert "seq 1: origin" in findings[0]


def test_a_ghost_view_row_is_named_alone(filled: Path) -> None:
    """A view row that no event made is named, with nothing else tampered."""
    table = VIEW_SPECS["learnings"].table
    _edit(filled, f"INSERT INTO {table} (row_seq, learning_id) VALUES (999, 'ghost')")
    assert verify(filled).findings == ["view learnings: row ghost is not in a replay of the log"]
