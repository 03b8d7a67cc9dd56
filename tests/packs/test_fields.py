"""The append-time schema: the exact messages, and what passes."""

from __future__ import annotations

from typing import Any

import pytest

from atlasd.errors import InvalidValue
from atlasd.packs.registry import builtin_packs


def refusal(event_type: str, data: dict[str, Any]) -> str | None:
    try:
        builtin_packs().check_event(event_type, data)
    except InvalidValue as error:
        return error.message
    return None


TASK = {
    "build_id": "b1",
    "task_id": "t1",
    "title": "Form",
    "agent": "coder",
    "status": "pending",
    "dependencies": [],
    "phase": 1,
}


@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        ("TaskLogged", {**TASK, "task_id": None}, "data.task_id: required"),
        ("TaskLogged", {k: v for k, v in TASK.items() if k != "task_id"}, "data.task_id: required"),
        ("TaskLogged", {**TASK, "task_id": ""}, "data.task_id: expected id"),
        ("TaskLogged", {**TASK, "task_id": 7}, "data.task_id: expected id"),
        ("TaskLogged", {**TASK, "dependencies": [1]}, "data.dependencies: expected string_list"),
        ("TaskLogged", {**TASK, "phase": True}, "data.phase: expected number"),
        (
            "TaskLogged",
            {**TASK, "status": "paused"},
            "data.status: expected one of pending, ready, running, done, failed, blocked",
        ),
        (
            "TraceRecorded",
            {"trace_id": "t", "span_id": "s", "name": "n", "start_ms": 1.5, "end_ms": 2},
            "data.start_ms: expected integer",
        ),
        (
            "ThreadSaved",
            {"thread_id": "t", "resource_id": "r", "title": "x", "metadata": []},
            "data.metadata: expected object",
        ),
        (
            "MessageSaved",
            {"message_id": "m", "thread_id": "t", "role": "user"},
            "data.content: required",
        ),
        (
            "AgentJobFinished",
            {"job_id": "j", "status": "done"},
            "data.status: expected one of completed, failed",
        ),
    ],
)
def test_refusals_name_the_field(event_type: str, data: dict[str, Any], message: str) -> None:
    """Each refused field gets its contract message: required, expected T, or the enum."""
    assert refusal(event_type, data) == message


def test_the_first_failing_field_in_definition_order_is_reported() -> None:
    """With several bad fields, the message names the first one the pack lists."""
    assert refusal("TaskLogged", {"status": 3}) == "data.build_id: required"


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("TaskLogged", TASK),
        ("TaskLogged", {**TASK, "extra": {"anything": [1, 2]}}),
        ("TaskStatusChanged", {"build_id": "b", "task_id": "t", "status": "done", "error": None}),
        (
            "TraceRecorded",
            {"trace_id": "t", "span_id": "s", "name": "n", "start_ms": 1.0, "end_ms": 2},
        ),
        ("EvalRecorded", {"eval_id": "e", "agent_name": "a", "metric_name": "m", "score": 0}),
        ("MessageSaved", {"message_id": "m", "thread_id": "t", "role": "user", "content": 0}),
        ("SomethingElse", {"whatever": None}),
    ],
)
def test_valid_data_passes(event_type: str, data: dict[str, Any]) -> None:
    """Optional fields may be null or absent, extra fields are kept, 1.0 is an integer,
    and types no pack defines are not checked."""
    assert refusal(event_type, data) is None
