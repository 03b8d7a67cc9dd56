"""A realistic mix of ATLAS domain events, and comparisons of local and remote state."""

from __future__ import annotations

import random
from typing import Any

from atlasd.events import NewEvent

__all__ = ["VIEW_COLUMNS", "VIEW_KEYS", "domain_events", "sorted_rows"]

#: Each view's key columns (views.md).
VIEW_KEYS: dict[str, tuple[str, ...]] = {
    "builds": ("build_id",),
    "tasks": ("build_id", "task_id"),
    "executions": ("event_id",),
    "patterns": ("pattern_id",),
    "learnings": ("learning_id",),
}

#: The contract's columns of each view (docs/views.md).
VIEW_COLUMNS: dict[str, list[str]] = {
    "builds": [
        "build_id",
        "prd_id",
        "prd_name",
        "status",
        "error",
        "started_at",
        "completed_at",
        "tasks_total",
        "tasks_done",
        "tasks_failed",
    ],
    "tasks": [
        "build_id",
        "task_id",
        "title",
        "agent",
        "status",
        "dependencies",
        "phase",
        "attempts",
        "error",
        "created_at",
        "updated_at",
    ],
    "executions": [
        "event_id",
        "build_id",
        "task_id",
        "agent",
        "model",
        "gates_passed",
        "duration_ms",
        "error",
        "recorded_at",
    ],
    "patterns": ["pattern_id", "name", "description", "code", "language", "tags", "created_at"],
    "learnings": [
        "learning_id",
        "insight",
        "category",
        "build_id",
        "task_id",
        "pattern_id",
        "recorded_at",
    ],
}


def sorted_rows(view: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows reduced to the contract's columns, sorted by the view's key."""
    columns = VIEW_COLUMNS[view]
    keys = VIEW_KEYS[view]
    reduced = [{c: row.get(c) for c in columns} for row in rows]
    return sorted(reduced, key=lambda row: tuple(str(row[k]) for k in keys))


def domain_events(count: int, prefix: str, seed: int = 0) -> list[NewEvent]:
    """About ``count`` events: builds with tasks, retries, executions, patterns, learnings.

    Keys start with ``prefix`` so two daemons' events never share a view row.
    """
    rng = random.Random(seed)
    events: list[NewEvent] = []
    build = 0
    while len(events) < count:
        build += 1
        build_id = f"{prefix}-b{build}"
        stream = f"build:{build_id}"
        events.append(
            NewEvent(
                stream=stream,
                type="BuildStarted",
                data={"build_id": build_id, "prd_id": f"prd-{build % 7}", "prd_name": "Login"},
            )
        )
        failed = False
        for t in range(rng.randint(2, 5)):
            task_id = f"t{t}"
            deps = [f"t{d}" for d in range(t)]
            events.append(
                NewEvent(
                    stream=stream,
                    type="TaskLogged",
                    data={
                        "build_id": build_id,
                        "task_id": task_id,
                        "title": f"task {t} of {build_id}",
                        "agent": rng.choice(["coder", "tester", "reviewer"]),
                        "status": "pending",
                        "dependencies": deps,
                        "phase": t // 2,
                    },
                )
            )
            for attempt in range(rng.randint(1, 2)):
                events.append(
                    NewEvent(
                        stream=stream,
                        type="TaskStatusChanged",
                        data={"build_id": build_id, "task_id": task_id, "status": "running"},
                    )
                )
                ok = attempt > 0 or rng.random() < 0.8
                events.append(
                    NewEvent(
                        stream=stream,
                        type="ExecutionLogged",
                        data={
                            "build_id": build_id,
                            "task_id": task_id,
                            "agent": "coder",
                            "model": "m-1",
                            "prompt": "p" * rng.randint(10, 300),
                            "response": "r" * rng.randint(10, 600),
                            "gates_passed": ok,
                            "duration_ms": rng.randint(5, 5000),
                            **({} if ok else {"error": "gate failed"}),
                        },
                    )
                )
                status = "done" if ok else "failed"
                failed = failed or not ok
                events.append(
                    NewEvent(
                        stream=stream,
                        type="TaskStatusChanged",
                        data={
                            "build_id": build_id,
                            "task_id": task_id,
                            "status": status,
                            **({} if ok else {"error": "gate failed"}),
                        },
                    )
                )
                if ok:
                    break
        if build % 3 == 0:
            pattern_id = f"{prefix}-p{build % 9}"
            events.append(
                NewEvent(
                    stream=f"pattern:{pattern_id}",
                    type="PatternStored",
                    data={
                        "pattern_id": pattern_id,
                        "name": f"pattern {build}",
                        "description": "retry with backoff",
                        "code": "def f(): pass",
                        "language": rng.choice(["python", "typescript"]),
                        "tags": rng.sample(["io", "retry", "db", "net"], 2),
                    },
                )
            )
        if build % 4 == 0:
            learning_id = f"{prefix}-l{build}"
            events.append(
                NewEvent(
                    stream=f"learning:{learning_id}",
                    type="LearningRecorded",
                    data={
                        "learning_id": learning_id,
                        "insight": "smaller batches fail less",
                        "category": "ops",
                        "build_id": build_id,
                    },
                )
            )
        events.append(
            NewEvent(
                stream=stream,
                type="BuildCompleted",
                data={"build_id": build_id, "status": "failed" if failed else "completed"},
            )
        )
    return events[:count]
