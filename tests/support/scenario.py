"""ATLAS scenarios for the dashboard's tests, screenshots and benchmark.

- :func:`demo_events`: a small, realistic history (builds done, failed and
  running; tasks in phases with dependencies, retries and errors;
  executions of several agents and models; patterns and learnings), each
  event with the moment it happened.
- :func:`write_log`: writes timed events into a data dir through the store
  (its clock override), for a daemon started on it afterwards: the pages
  then show real durations.
- :func:`append_all`: appends events to a running daemon through its socket.
- :func:`many_builds`: ``n`` builds of two tasks each, for volume.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from atlasd.eventlog import EventStore, StoreConfig
from atlasd.events import NewEvent

from .daemon import DaemonProcess

__all__ = ["TimedEvent", "append_all", "demo_events", "many_builds", "write_log"]

#: (ms since the epoch, {"stream", "type", "data"})
TimedEvent = tuple[int, dict[str, Any]]

_AGENTS = ("planner", "coder", "reviewer", "tester")
_MODELS = {
    "planner": "atlas-large",
    "coder": "atlas-medium",
    "reviewer": "atlas-large",
    "tester": "atlas-small",
}


def _ev(stream: str, type_: str, **data: Any) -> dict[str, Any]:
    return {"stream": stream, "type": type_, "data": data}


def demo_events(now_ms: int) -> list[TimedEvent]:
    """The demo history, ending at ``now_ms``, oldest first."""
    out: list[TimedEvent] = []
    builds = [
        ("b-1041", "prd-12", "Checkout flow", "completed", 6 * 3600_000),
        ("b-1042", "prd-15", "Search API", "failed", 4 * 3600_000),
        ("b-1043", "prd-12", "Checkout flow: coupons", "completed", 3 * 3600_000),
        ("b-1044", "prd-18", "Billing export", "completed", 2 * 3600_000),
        ("b-1045", "prd-21", "Login revamp", "running", 40 * 60_000),
        ("b-1046", "prd-22", "Onboarding emails", "running", 12 * 60_000),
    ]
    plan = [
        ("t-1", "Write the plan", "planner", 1, []),
        ("t-2", "Data model and migration", "coder", 2, ["t-1"]),
        ("t-3", "API endpoints", "coder", 2, ["t-1"]),
        ("t-4", "UI components", "coder", 2, ["t-1"]),
        ("t-5", "Integration tests", "tester", 3, ["t-2", "t-3"]),
        ("t-6", "Code review", "reviewer", 3, ["t-3", "t-4"]),
        ("t-7", "Release notes", "planner", 4, ["t-5", "t-6"]),
    ]
    for n, (build_id, prd_id, prd_name, outcome, age) in enumerate(builds):
        stream = f"build:{build_id}"
        t = now_ms - age
        out.append(
            (t, _ev(stream, "BuildStarted", build_id=build_id, prd_id=prd_id, prd_name=prd_name))
        )
        # How far a running build got: the first phases only.
        last_phase = {"running": 2 + n % 2}.get(outcome, 4)
        for task_id, title, agent, phase, deps in plan:
            t += 20_000
            out.append(
                (
                    t,
                    _ev(
                        stream,
                        "TaskLogged",
                        build_id=build_id,
                        task_id=task_id,
                        title=title,
                        agent=agent,
                        status="pending",
                        dependencies=deps,
                        phase=phase,
                    ),
                )
            )
        for task_id, _title, agent, phase, _deps in plan:
            if phase > last_phase:
                continue
            fails = (outcome == "failed" and task_id == "t-3") or (
                build_id == "b-1043" and task_id == "t-5"
            )
            attempts = 2 if fails or (n + int(task_id[2:])) % 5 == 0 else 1
            for attempt in range(attempts):
                t += 15_000
                out.append(
                    (
                        t,
                        _ev(
                            stream,
                            "TaskStatusChanged",
                            build_id=build_id,
                            task_id=task_id,
                            status="running",
                        ),
                    )
                )
                duration = 40_000 + ((n * 7 + int(task_id[2:]) * 13 + attempt * 5) % 17) * 9_000
                if agent == "tester":
                    duration //= 2
                t += duration
                final = attempt == attempts - 1
                error = None
                if not final or (fails and outcome == "failed"):
                    error = (
                        "search index timed out after 30 s (shard 3 unreachable)"
                        if task_id == "t-3"
                        else "2 of 41 tests failed: test_coupon_expiry"
                    )
                still_running = outcome == "running" and phase == last_phase and final
                if still_running and task_id in ("t-2", "t-5"):
                    break
                out.append(
                    (
                        t,
                        _ev(
                            stream,
                            "ExecutionLogged",
                            build_id=build_id,
                            task_id=task_id,
                            agent=agent,
                            model=_MODELS[agent],
                            prompt=f"{task_id}: {_title}",
                            response="ok",
                            gates_passed=error is None,
                            duration_ms=duration,
                            **({"error": error} if error else {}),
                        ),
                    )
                )
                status = "failed" if error else "done"
                if error and not final:
                    status = "failed"
                out.append(
                    (
                        t + 500,
                        _ev(
                            stream,
                            "TaskStatusChanged",
                            build_id=build_id,
                            task_id=task_id,
                            status=status,
                            **({"error": error} if error else {}),
                        ),
                    )
                )
            if outcome == "failed" and task_id == "t-3":
                break
        if outcome != "running":
            t += 5_000
            extra = {"error": "task t-3 failed after 2 attempts"} if outcome == "failed" else {}
            out.append(
                (t, _ev(stream, "BuildCompleted", build_id=build_id, status=outcome, **extra))
            )
    patterns = [
        ("p-1", "Retry with backoff", "python", ["resilience", "http"]),
        ("p-2", "Idempotent upsert", "sql", ["database", "resilience"]),
        ("p-3", "Form validation hook", "typescript", ["react", "forms"]),
        ("p-4", "Paged query cursor", "python", ["database", "paging"]),
        ("p-5", "Feature flag guard", "typescript", ["release"]),
    ]
    t0 = now_ms - 5 * 3600_000
    for i, (pattern_id, name, language, tags) in enumerate(patterns):
        out.append(
            (
                t0 + i * 600_000,
                _ev(
                    f"pattern:{pattern_id}",
                    "PatternStored",
                    pattern_id=pattern_id,
                    name=name,
                    description=f"{name}, as used in the builds.",
                    code="...",
                    language=language,
                    tags=tags,
                ),
            )
        )
    learnings = [
        ("l-1", "Search shards need a health check before indexing", "infra", "b-1042", "t-3"),
        ("l-2", "Coupon expiry tests must pin the clock", "testing", "b-1043", "t-5"),
        ("l-3", "Plan tasks so reviews run beside tests", "process", "b-1044", None),
    ]
    for i, (learning_id, insight, category, build_id, task_id) in enumerate(learnings):
        data: dict[str, Any] = {
            "learning_id": learning_id,
            "insight": insight,
            "category": category,
            "build_id": build_id,
        }
        if task_id:
            data["task_id"] = task_id
        out.append(
            (
                now_ms - 3600_000 + i * 600_000,
                {"stream": f"learning:{learning_id}", "type": "LearningRecorded", "data": data},
            )
        )
    out.sort(key=lambda item: item[0])
    return out


def many_builds(n: int, prefix: str = "b") -> Iterator[dict[str, Any]]:
    """``n`` builds with two tasks each (one done), as append items."""
    for i in range(n):
        build_id = f"{prefix}-{i:06d}"
        stream = f"build:{build_id}"
        yield _ev(
            stream,
            "BuildStarted",
            build_id=build_id,
            prd_id=f"prd-{i % 40}",
            prd_name=f"Feature {i % 40}",
        )
        for task in ("t-1", "t-2"):
            yield _ev(
                stream,
                "TaskLogged",
                build_id=build_id,
                task_id=task,
                title=task,
                agent="coder",
                status="pending",
                dependencies=[],
                phase=1,
            )
        yield _ev(stream, "TaskStatusChanged", build_id=build_id, task_id="t-1", status="done")


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def append_all(daemon: DaemonProcess, items: Iterable[dict[str, Any]], batch: int = 1000) -> int:
    """Append ``items`` through the socket, ``batch`` per ``append_batch``; returns the count."""
    count = 0
    with daemon.connect() as conn:
        for chunk in _chunks(items, batch):
            answer = conn.request("append_batch", events=chunk)
            assert answer.get("ok"), answer
            count += len(chunk)
    return count


def write_log(data_dir: Path, events: Iterable[TimedEvent]) -> None:
    """Append timed ``events`` into ``data_dir`` (no daemon may run on it)."""

    async def write() -> None:
        async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
            for at, item in events:
                await store.append_batch(
                    [NewEvent(stream=item["stream"], type=item["type"], data=item["data"])],
                    recorded_at=at,
                )

    # A thread of its own: the caller may already run an event loop (Playwright's sync API).
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(write())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]
