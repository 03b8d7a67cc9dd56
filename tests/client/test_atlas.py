"""The ATLAS facade end to end: lifecycle calls become events and view rows."""

from __future__ import annotations

import time

import pytest

from atlasd.client import AsyncAtlas, AsyncClient, Atlas, Client
from atlasd.errors import InvalidValue
from tests.support.daemon import DaemonProcess


async def test_a_build_lifecycle_shows_in_every_view(daemon: DaemonProcess) -> None:
    """Builds, tasks, executions, patterns and learnings all reach their views."""
    async with AsyncAtlas(socket_path=daemon.socket, data_dir=daemon.data_dir) as atlas:
        build_id = await atlas.start_build("prd-1", "Login page")
        await atlas.log_task(build_id, "t1", "Form", "coder", "pending", [], 1)
        await atlas.log_task(build_id, "t2", "Tests", "tester", "pending", ["t1"], 2)
        await atlas.set_task_status(build_id, "t1", "running")
        await atlas.set_task_status(build_id, "t1", "failed", error="lint")
        await atlas.set_task_status(build_id, "t1", "running")
        await atlas.set_task_status(build_id, "t1", "done")
        await atlas.set_task_status(build_id, "t2", "failed", error="boom")
        execution_id = await atlas.log_execution(
            build_id, "t1", "coder", "m-1", "prompt", "response", True, 1234
        )
        py = await atlas.store_pattern("retry", "retries", "code()", "python", ["io", "net"])
        await atlas.store_pattern("other", "d", "x", "python", ["io"])
        await atlas.store_pattern("ts", "d", "x", "typescript", ["io", "net"])
        learning_id = await atlas.record_learning(
            "lint first", "process", build_id=build_id, task_id="t1", pattern_id=py
        )
        await atlas.complete_build(build_id, "failed", error="t2 failed")

        [build] = await atlas.builds()
        tasks = {t.task_id: t for t in await atlas.tasks(build_id)}
        patterns = await atlas.query_patterns(language="python", tags=["net"])
        all_io = await atlas.query_patterns(tags=["io"])
        client = atlas.client
        executions = await client.query("executions")
        learnings = await client.query("learnings")

    assert (build.build_id, build.prd_id, build.prd_name) == (build_id, "prd-1", "Login page")
    assert (build.status, build.error) == ("failed", "t2 failed")
    assert (build.tasks_total, build.tasks_done, build.tasks_failed) == (2, 1, 1)
    assert build.started_at is not None
    assert build.completed_at is not None
    assert (tasks["t1"].status, tasks["t1"].attempts, tasks["t1"].error) == ("done", 2, None)
    assert (tasks["t2"].status, tasks["t2"].error, tasks["t2"].dependencies) == (
        "failed",
        "boom",
        ["t1"],
    )
    assert [p.pattern_id for p in patterns] == [py]
    assert len(all_io) == 3
    assert [(e["event_id"], e["gates_passed"], e["duration_ms"]) for e in executions] == [
        (execution_id, True, 1234)
    ]
    assert [(lr["learning_id"], lr["pattern_id"]) for lr in learnings] == [(learning_id, py)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.complete_build("b1", "done"), "status must be one of completed, failed"),
        (lambda a: a.log_task("b1", "t", "T", "x", "finished"), "status must be one of"),
        (lambda a: a.set_task_status("b1", "", "done"), "task_id"),
        (lambda a: a.log_task("b1", "t", "T", "x", "done", "t0"), "dependencies"),
        (lambda a: a.log_execution("b1", "t", "a", "m", "p", "r", "yes", 1), "gates_passed"),
        (lambda a: a.log_execution("b1", "t", "a", "m", "p", "r", True, -1), "duration_ms"),
        (lambda a: a.store_pattern("n", "d", "c", "py", [1]), r"tags\[0\]"),
    ],
)
def test_bad_arguments_raise_before_anything_is_written(
    daemon: DaemonProcess, call: object, message: str
) -> None:
    """Invalid statuses, ids or field types raise InvalidValue and append nothing."""
    with Atlas(socket_path=daemon.socket, data_dir=daemon.data_dir) as atlas:
        with pytest.raises(InvalidValue, match=message):
            call(atlas)  # type: ignore[operator]
        assert atlas.client.status().last_seq == 0


def test_the_facade_is_durable_while_the_daemon_is_down(daemon: DaemonProcess) -> None:
    """With the daemon stopped the facade spools; on start the views show everything."""
    assert daemon.stop() == 0
    with Atlas(socket_path=daemon.socket, data_dir=daemon.data_dir) as atlas:
        build_id = atlas.start_build("prd-2", "Offline")
        outcome = atlas.log_task(build_id, "t1", "Work", "coder", "running", [], 1)
        assert outcome.spooled
        atlas.complete_build(build_id, "completed")
    daemon.start()
    with Client(daemon.socket) as client:
        deadline = time.monotonic() + 20
        while client.status().last_seq < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        [build] = client.query("builds")
    assert (build["build_id"], build["status"], build["tasks_total"]) == (
        build_id,
        "completed",
        1,
    )


async def test_meta_is_attached_to_every_event(daemon: DaemonProcess) -> None:
    """The facade's meta travels with each event it writes."""
    async with AsyncClient(daemon.socket, spool=False) as client:
        atlas = AsyncAtlas(client, meta={"tool": "orchestrator"})
        await atlas.start_build("p", "n", build_id="b-9")
        [event] = (await client.read(0)).events
    assert (event.stream, event.type, event.meta) == (
        "build:b-9",
        "BuildStarted",
        {"tool": "orchestrator"},
    )
