"""export then import into a fresh data dir gives identical view rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atlasd.client import Client
from tests.support.daemon import DaemonProcess, clean_env, running_daemon

ATLASD = str(Path(sys.executable).parent / "atlasd")
VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.json"))
VIEWS = ("builds", "tasks", "executions", "patterns", "learnings")
GENERATED = 100_000
BATCH = 2000


def _vector_items() -> list[dict[str, Any]]:
    """Every vector's events as append items; occurred_at only where the vector has one.

    Legacy vectors hold events the pack schemas now refuse at append: they are left out.
    """
    items = []
    for path in VECTORS:
        vector = json.loads(path.read_text())
        if vector.get("legacy"):
            continue
        for e in vector["events"]:
            items.append(
                {
                    "stream": e["stream"],
                    "type": e["type"],
                    "data": e["data"],
                    "event_id": e["event_id"],
                    **({"meta": e["meta"]} if "meta" in e else {}),
                    **({"occurred_at": e["occurred_at"]} if "occurred_at" in e else {}),
                }
            )
    return items


def _generated(i: int) -> dict[str, Any]:
    """A mix over every view; every third event has no occurred_at (the log's clock)."""
    b = f"gb-{i // 50}"
    kind = i % 5
    when = {"occurred_at": 1_600_000_000_000 + (i * 7919) % 10_000_000} if i % 3 else {}
    if kind == 0:
        item = {"stream": f"build:{b}", "type": "BuildStarted",
                "data": {"build_id": b, "prd_id": f"p{i % 7}", "prd_name": "n"}}  # fmt: skip
    elif kind == 1:
        item = {"stream": f"build:{b}", "type": "TaskLogged",
                "data": {"build_id": b, "task_id": f"t{i}", "title": "x", "agent": "a",
                         "status": "pending", "dependencies": [], "phase": i % 4}}  # fmt: skip
    elif kind == 2:
        item = {"stream": f"build:{b}", "type": "TaskStatusChanged",
                "data": {"build_id": b, "task_id": f"t{i - 1}", "status": "running"}}  # fmt: skip
    elif kind == 3:
        item = {"stream": f"build:{b}", "type": "ExecutionLogged",
                "data": {"build_id": b, "task_id": f"t{i - 2}", "agent": "a", "model": "m",
                         "prompt": "p", "response": "r", "gates_passed": i % 2 == 0,
                         "duration_ms": i % 1000}}  # fmt: skip
    elif i % 2:
        item = {"stream": f"pattern:p{i % 500}", "type": "PatternStored",
                "data": {"pattern_id": f"p{i % 500}", "name": "n", "description": "d",
                         "code": "c", "language": "py", "tags": ["a", f"t{i % 3}"]}}  # fmt: skip
    else:
        data = {"learning_id": f"l{i}", "insight": "i", "category": f"c{i % 4}"}
        item = {"stream": f"learning:l{i}", "type": "LearningRecorded", "data": data}
    return item | when


def _views(daemon: DaemonProcess) -> dict[str, list[dict[str, Any]]]:
    with Client(daemon.socket, spool=False) as client:
        return {
            view: list(client.query_all(view, page_size=10_000, order_by=None)) for view in VIEWS
        }


def _run(*args: str, daemon: DaemonProcess) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [ATLASD, *args],
        capture_output=True,
        text=True,
        env=clean_env({"ATLASD_SOCKET": str(daemon.socket)}),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.slow
def test_export_then_import_gives_identical_views(tmp_path: Path) -> None:
    """All vectors plus 100,000 generated events: every view row is the same after import."""
    dump = tmp_path / "log.ndjson"
    with running_daemon() as source:
        with source.connect() as conn:
            items = _vector_items()
            for start in range(0, len(items), BATCH):
                assert conn.request("append_batch", events=items[start : start + BATCH])["ok"]
            for start in range(0, GENERATED, BATCH):
                batch = [_generated(i) for i in range(start, start + BATCH)]
                answer = conn.request("append_batch", events=batch)
                assert answer["ok"], answer
        _run("export", "-o", str(dump), daemon=source)
        expected = _views(source)
    assert dump.read_bytes().count(b"\n") == len(items) + GENERATED
    assert all(expected[view] for view in VIEWS)
    with running_daemon() as target:
        _run("import", str(dump), daemon=target)
        got = _views(target)
    for view in VIEWS:
        assert len(got[view]) == len(expected[view]), view
        assert got[view] == expected[view], view
