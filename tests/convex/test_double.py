"""The Convex double over real HTTP: ingest, token refusal, readback, reset, stopping."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from atlasd.eventlog import VIEWS
from atlasd.eventlog.projections import VIEW_SPECS
from tests.support.convex_double import ConvexDouble, DoubleError, envelopes

VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.json"))
KEYS = {view: VIEW_SPECS[view].key for view in VIEWS}


def _origin() -> str:
    return str(uuid.uuid4())


def _build_events(origin: str, count: int) -> list[dict[str, Any]]:
    """``count`` events of one build: started, then tasks logged."""
    raw = [
        {
            "stream": "build:b1",
            "type": "BuildStarted",
            "event_id": str(uuid.uuid4()),
            "recorded_at": 1_000,
            "data": {"build_id": "b1", "prd_id": "p1", "prd_name": "Login"},
        }
    ]
    raw += [
        {
            "stream": "build:b1",
            "type": "TaskLogged",
            "event_id": str(uuid.uuid4()),
            "recorded_at": 1_000 + i,
            "data": {
                "build_id": "b1",
                "task_id": f"t{i}",
                "title": f"task {i}",
                "agent": "SUN",
                "status": "done" if i % 2 else "pending",
                "dependencies": [],
                "phase": 1,
            },
        }
        for i in range(1, count)
    ]
    return envelopes(origin, raw)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once reaped.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().split(") ", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_a_batch_posted_over_http_is_stored_once_and_projected(
    convex_double: ConvexDouble,
) -> None:
    """A POST stores every event, answers the contract's counts and updates the views."""
    origin = _origin()
    events = _build_events(origin, 5)
    response = convex_double.ingest(origin, events)
    assert response.status_code == 200
    assert response.json() == {"accepted": 5, "duplicates": 0, "rejected": [], "high_water": 5}
    assert convex_double.events(origin) == events
    (build,) = convex_double.view("builds")
    assert build["build_id"] == "b1"
    assert (build["tasks_total"], build["tasks_done"], build["tasks_failed"]) == (4, 2, 0)
    assert len(convex_double.view("tasks")) == 4


def test_a_batch_sent_again_is_answered_as_duplicates(convex_double: ConvexDouble) -> None:
    """Resending a stored batch stores nothing new and keeps the high water."""
    origin = _origin()
    events = _build_events(origin, 3)
    assert convex_double.ingest(origin, events).json()["accepted"] == 3
    again = convex_double.ingest(origin, events).json()
    assert again == {"accepted": 0, "duplicates": 3, "rejected": [], "high_water": 3}
    assert len(convex_double.events(origin)) == 3
    assert convex_double.view("builds")[0]["tasks_total"] == 2


def test_the_status_endpoint_reports_the_high_water(convex_double: ConvexDouble) -> None:
    """GET /atlasd/ingest/status answers the origin's high water and event count."""
    origin = _origin()
    events = _build_events(origin, 4)
    convex_double.ingest(origin, events[:2] + events[3:])  # seq 3 missing: a gap
    response = convex_double.client.get(
        "/atlasd/ingest/status",
        params={"origin": origin},
        headers={"Authorization": f"Bearer {convex_double.token}"},
    )
    assert response.status_code == 200
    assert response.json() == {"origin": origin, "high_water": 2, "events": 3}


def test_a_wrong_token_is_refused_and_nothing_is_stored(convex_double: ConvexDouble) -> None:
    """A POST with another token gets 401 and leaves the remote untouched."""
    origin = _origin()
    response = convex_double.ingest(origin, _build_events(origin, 2), token="not-the-token")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert convex_double.events(origin) == []
    assert convex_double.view("builds") == []


def test_a_missing_token_is_refused(convex_double: ConvexDouble) -> None:
    """A POST without an Authorization header gets 401."""
    origin = _origin()
    response = convex_double.client.post(
        "/atlasd/ingest", json={"origin": origin, "events": _build_events(origin, 1)}
    )
    assert response.status_code == 401
    assert convex_double.events(origin) == []


def test_a_malformed_batch_is_refused_with_a_reason(convex_double: ConvexDouble) -> None:
    """An event missing a field gets 400 naming it, and no event of the batch is stored."""
    origin = _origin()
    events = _build_events(origin, 2)
    del events[1]["hash"]
    response = convex_double.ingest(origin, events)
    assert response.status_code == 400
    assert "events[1].hash" in response.json()["message"]
    assert convex_double.events(origin) == []


def test_a_body_over_the_byte_limit_is_refused_with_413(convex_double: ConvexDouble) -> None:
    """A POST of more than 2 MiB gets 413 with the limits, and nothing is stored."""
    origin = _origin()
    events = _build_events(origin, 5)
    events[0]["data"]["padding"] = "x" * (2 * 1024 * 1024)
    response = convex_double.ingest(origin, events)
    assert response.status_code == 413
    assert response.json()["max_bytes"] == 2 * 1024 * 1024
    assert convex_double.events(origin) == []


def test_more_events_than_the_limit_are_refused_with_413(convex_double: ConvexDouble) -> None:
    """A POST of more events than the default limit (450) gets 413 naming the limit."""
    origin = _origin()
    response = convex_double.ingest(origin, _build_events(origin, 451))
    assert response.status_code == 413
    assert response.json()["max_events"] == 450
    assert convex_double.events(origin) == []


def test_reset_empties_every_table(convex_double: ConvexDouble) -> None:
    """POST /_test/reset leaves no event, view row or origin record behind."""
    origin = _origin()
    convex_double.ingest(origin, _build_events(origin, 3))
    convex_double.reset()
    assert convex_double.events(origin) == []
    for view in KEYS:
        assert convex_double.view(view) == []
    assert convex_double.status(origin)["high_water"] == 0


def test_a_function_that_throws_answers_convex_error_format(convex_double: ConvexDouble) -> None:
    """/api/query answers status "error" with the message of a function that throws."""
    response = convex_double.client.post(
        "/api/query", json={"path": "inspect:view", "args": {"name": "nope"}, "format": "json"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "error"
    assert "unknown view" in body["errorMessage"]
    with pytest.raises(DoubleError, match="unknown view"):
        convex_double.view("nope")


def test_internal_queries_filter_patterns_by_language_and_tags(
    convex_double: ConvexDouble,
) -> None:
    """views:patterns narrows by language and keeps rows having every given tag."""
    origin = _origin()
    raw = [
        {
            "stream": f"pattern:{pid}",
            "type": "PatternStored",
            "event_id": str(uuid.uuid4()),
            "recorded_at": 1_000 + i,
            "data": {
                "pattern_id": pid,
                "name": pid,
                "description": "",
                "code": "",
                "language": language,
                "tags": tags,
            },
        }
        for i, (pid, language, tags) in enumerate(
            [
                ("p1", "python", ["retry", "http"]),
                ("p2", "python", ["retry"]),
                ("p3", "go", ["retry", "http"]),
            ]
        )
    ]
    assert convex_double.ingest(origin, envelopes(origin, raw)).json()["accepted"] == 3
    rows = convex_double.query("views:patterns", {"language": "python", "tags": ["http", "retry"]})
    assert [row["pattern_id"] for row in rows] == ["p1"]
    rows = convex_double.query("views:patterns", {"tags": ["retry"]})
    assert sorted(row["pattern_id"] for row in rows) == ["p1", "p2", "p3"]


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_each_shared_vector_gives_its_expected_views(
    convex_double: ConvexDouble, path: Path
) -> None:
    """Every shared vector posted through the ingest, in its arrival order when it gives
    one (one event per POST), gives exactly its expected rows."""
    vector = json.loads(path.read_text())
    origin = _origin()
    batch = envelopes(origin, vector["events"])
    if "arrival" in vector:
        accepted = sum(
            convex_double.ingest(origin, [batch[i]]).json()["accepted"] for i in vector["arrival"]
        )
    else:
        accepted = convex_double.ingest(origin, batch).json()["accepted"]
    assert accepted == len(vector["events"])
    for view, keys in KEYS.items():
        rows = sorted(convex_double.view(view), key=lambda row: [row[k] for k in keys])
        assert rows == vector["expected"].get(view, []), view


@pytest.mark.slow
def test_the_fast_lookup_path_answers_as_convex_test_does() -> None:
    """With verification on, a mixed workload gives the stock answers on every lookup."""
    with ConvexDouble(env={"ATLASD_DOUBLE_VERIFY": "1"}) as double:
        origin = _origin()
        events = _build_events(origin, 600)
        other = _origin()
        assert double.ingest(origin, events[:200]).json()["high_water"] == 200
        assert double.ingest(origin, events[300:]).json()["high_water"] == 200
        assert double.ingest(origin, events[100:300]).json() == {
            "accepted": 100,
            "duplicates": 100,
            "rejected": [],
            "high_water": 600,
        }
        # The same ids under another origin: duplicates, high water passes them.
        again = envelopes(other, [{**e, "meta": {}} for e in events[:50]])
        assert double.ingest(other, again).json() == {
            "accepted": 0,
            "duplicates": 50,
            "rejected": [],
            "high_water": 50,
        }
        (build,) = double.view("builds")
        assert (build["tasks_total"], build["tasks_done"]) == (599, 300)
        assert len(double.events(origin)) == 600
        assert double.status(origin)["events"] == 600
        # Late arrivals re-fold rows through the event_rows and view_rows indexes.
        for path in VECTORS:
            vector = json.loads(path.read_text())
            if "arrival" not in vector:
                continue
            late = _origin()
            batch = envelopes(late, vector["events"])
            for i in vector["arrival"]:
                assert double.ingest(late, [batch[i]]).json()["rejected"] == []
        (thread,) = [row for row in double.view("threads") if row["thread_id"] == "lt1"]
        assert thread["messages"] == 1


def test_sigterm_stops_the_double_and_leaves_no_process() -> None:
    """stop() (SIGTERM) ends the double and any child; its port stops answering."""
    double = ConvexDouble().start()
    pid, url = double.pid, double.url
    assert httpx.post(f"{url}/_test/reset").status_code == 200
    children = _children(pid)
    double.stop()
    assert not _pid_alive(pid)
    assert not [child for child in children if _pid_alive(child)]
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/_test/reset")


def test_the_double_exits_when_its_starter_goes_away() -> None:
    """Closing the double's stdin (its starter died) makes it exit 0 by itself."""
    double = ConvexDouble().start()
    process = double._process
    assert process is not None
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    double.stop()


def test_sigint_stops_the_double_with_exit_status_zero() -> None:
    """SIGINT, like SIGTERM, closes the double cleanly with status 0."""
    double = ConvexDouble().start()
    process = double._process
    assert process is not None
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    double.stop()


def _worst_mix(origin: str, count: int, first: int, version: int) -> list[dict[str, Any]]:
    """TaskStatusChanged events of their own build and task, seqs 10 apart from ``first``."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        event = {
            "stream": f"build:b{i}",
            "type": "TaskStatusChanged",
            "event_id": str(uuid.uuid4()),
            "recorded_at": 1_000 + i,
            "data": {"build_id": f"b{i}", "task_id": f"t{i}", "status": "running"},
        }
        # Built one by one: seq 1 chains from genesis, the others have no stored predecessor.
        [envelope] = envelopes(origin, [event], first_seq=first + 10 * i)
        out.append({**envelope, "version": version})
    return out


def test_the_double_counts_an_index_range_for_each_replace() -> None:
    """700 events updating stored rows read 4,203 ranges, replaces counted: 413, as on Convex."""
    with ConvexDouble(env={"ATLASD_INGEST_MAX_EVENTS": "100000"}) as double:
        origin = _origin()
        first = double.ingest(origin, _worst_mix(origin, 700, 1, 1))
        assert first.status_code == 200
        # Without the replaces counted this batch would read 2,803 ranges and pass.
        update = double.ingest(origin, _worst_mix(origin, 700, 5, 2))
        assert update.status_code == 413
        assert "index ranges" in update.json()["message"]
        assert double.status(origin)["events"] == 700
