"""The fold reads a group's unknown rows in one statement per view; views stay exact."""

from __future__ import annotations

from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify


def lifecycle(build: str, status: str) -> list[NewEvent]:
    stream = f"build:{build}"
    events = [
        NewEvent(
            stream=stream,
            type="BuildStarted",
            data={"build_id": build, "prd_id": "p", "prd_name": "n"},
        ),
        NewEvent(
            stream=stream,
            type="PatternStored",
            data={
                "pattern_id": f"p-{build}",
                "name": status,
                "description": "",
                "code": "",
                "language": "py",
                "tags": ["a", status],
            },
        ),
        NewEvent(
            stream=stream,
            type="LearningRecorded",
            data={
                "learning_id": f"l-{build}",
                "insight": status,
                "category": "c",
                "build_id": build,
            },
        ),
    ]
    for t in range(4):
        task = {"build_id": build, "task_id": f"t{t}"}
        logged = {**task, "title": "", "agent": "a", "dependencies": [], "phase": 1}
        events.append(NewEvent(stream=stream, type="TaskLogged", data={**logged, "status": status}))
        events.append(
            NewEvent(stream=stream, type="TaskStatusChanged", data={**task, "status": "running"})
        )
    return events


async def test_rows_stored_before_a_reopen_are_found_by_a_large_group(data_dir: Path) -> None:
    """After a reopen (empty row cache), a big batch touching stored rows updates them in
    place: no duplicate rows, counts and attempts carried on, and verify agrees."""
    config = StoreConfig(data_dir=data_dir)
    async with await EventStore.open(config) as store:
        await store.append_batch([ev for b in ("b1", "b2", "b3") for ev in lifecycle(b, "pending")])
    async with await EventStore.open(config) as store:
        await store.append_batch([ev for b in ("b1", "b2", "b4") for ev in lifecycle(b, "done")])
        builds = {row["build_id"]: row for row in await store.query("builds")}
        tasks = await store.query("tasks", limit=100)
        patterns = await store.query("patterns")
        learnings = await store.query("learnings")
    assert sorted(builds) == ["b1", "b2", "b3", "b4"]
    assert builds["b1"]["tasks_total"] == 4
    assert len(tasks) == 16
    b1_t0 = next(t for t in tasks if t["build_id"] == "b1" and t["task_id"] == "t0")
    assert b1_t0["attempts"] == 2
    assert [p["pattern_id"] for p in patterns] == ["p-b1", "p-b2", "p-b3", "p-b4"]
    assert next(p for p in patterns if p["pattern_id"] == "p-b1")["name"] == "done"
    assert [row["learning_id"] for row in learnings] == ["l-b1", "l-b2", "l-b3", "l-b4"]
    report = verify(data_dir)
    assert report.ok, report.findings
