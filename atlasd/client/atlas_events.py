"""The ATLAS lifecycle events (docs/views.md), built and checked.

Each builder returns a :class:`~atlasd.events.NewEvent` with its
``event_id`` already set, or raises :class:`~atlasd.errors.InvalidValue`
naming the bad argument, before anything is sent or spooled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias

from atlasd.errors import InvalidValue
from atlasd.events import NewEvent
from atlasd.events.ids import new_event_id

__all__ = [
    "BUILD_STATUSES",
    "TASK_STATUSES",
    "BuildStatus",
    "TaskStatus",
    "build_completed",
    "build_started",
    "execution_logged",
    "learning_recorded",
    "new_id",
    "pattern_stored",
    "task_logged",
    "task_status_changed",
]

BuildStatus: TypeAlias = Literal["completed", "failed"]
TaskStatus: TypeAlias = Literal["pending", "ready", "running", "done", "failed", "blocked"]

BUILD_STATUSES: Final = ("completed", "failed")
TASK_STATUSES: Final = ("pending", "ready", "running", "done", "failed", "blocked")

#: Stream names are at most 200 characters; keep room for the ``build:`` prefix.
_MAX_KEY = 190


def new_id() -> str:
    """A fresh identifier for a build, pattern or learning (a UUIDv7)."""
    return new_event_id()


def _key(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValue(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > _MAX_KEY:
        raise InvalidValue(f"{name} is longer than {_MAX_KEY} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidValue(f"{name} contains a control character")
    return value


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string, got {type(value).__name__}")
    return value


def _optional_text(name: str, value: object) -> str | None:
    return None if value is None else _text(name, value)


def _optional_key(name: str, value: object) -> str | None:
    return None if value is None else _key(name, value)


def _strings(name: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidValue(f"{name} must be a list of strings, got {value!r}")
    items = list(value)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidValue(f"{name}[{index}] must be a string, got {item!r}")
    return items


def _choice(name: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InvalidValue(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _number(name: str, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"{name} must be a number, got {value!r}")
    return value


def _event(stream: str, type_: str, data: dict[str, Any], meta: dict[str, Any] | None) -> NewEvent:
    # Optional fields left unset are omitted rather than sent as null.
    payload = {k: v for k, v in data.items() if v is not None}
    return NewEvent(stream=stream, type=type_, data=payload, event_id=new_event_id(), meta=meta)


def build_started(
    build_id: str, prd_id: str, prd_name: str, meta: dict[str, Any] | None = None
) -> NewEvent:
    build_id = _key("build_id", build_id)
    data = {"build_id": build_id, "prd_id": _text("prd_id", prd_id)}
    data["prd_name"] = _text("prd_name", prd_name)
    return _event(f"build:{build_id}", "BuildStarted", data, meta)


def build_completed(
    build_id: str, status: str, error: str | None = None, meta: dict[str, Any] | None = None
) -> NewEvent:
    build_id = _key("build_id", build_id)
    data = {
        "build_id": build_id,
        "status": _choice("status", status, BUILD_STATUSES),
        "error": _optional_text("error", error),
    }
    return _event(f"build:{build_id}", "BuildCompleted", data, meta)


def task_logged(
    build_id: str,
    task_id: str,
    title: str,
    agent: str,
    status: str,
    dependencies: Sequence[str] = (),
    phase: int | float = 0,
    meta: dict[str, Any] | None = None,
) -> NewEvent:
    build_id = _key("build_id", build_id)
    data = {
        "build_id": build_id,
        "task_id": _key("task_id", task_id),
        "title": _text("title", title),
        "agent": _text("agent", agent),
        "status": _choice("status", status, TASK_STATUSES),
        "dependencies": _strings("dependencies", dependencies),
        "phase": _number("phase", phase),
    }
    return _event(f"build:{build_id}", "TaskLogged", data, meta)


def task_status_changed(
    build_id: str,
    task_id: str,
    status: str,
    error: str | None = None,
    meta: dict[str, Any] | None = None,
) -> NewEvent:
    build_id = _key("build_id", build_id)
    data = {
        "build_id": build_id,
        "task_id": _key("task_id", task_id),
        "status": _choice("status", status, TASK_STATUSES),
        "error": _optional_text("error", error),
    }
    return _event(f"build:{build_id}", "TaskStatusChanged", data, meta)


def execution_logged(
    build_id: str,
    task_id: str,
    agent: str,
    model: str,
    prompt: str,
    response: str,
    gates_passed: bool,
    duration_ms: int | float,
    error: str | None = None,
    meta: dict[str, Any] | None = None,
) -> NewEvent:
    build_id = _key("build_id", build_id)
    if not isinstance(gates_passed, bool):
        raise InvalidValue(f"gates_passed must be a boolean, got {gates_passed!r}")
    duration = _number("duration_ms", duration_ms)
    if duration < 0:
        raise InvalidValue(f"duration_ms must not be negative, got {duration!r}")
    data = {
        "build_id": build_id,
        "task_id": _key("task_id", task_id),
        "agent": _text("agent", agent),
        "model": _text("model", model),
        "prompt": _text("prompt", prompt),
        "response": _text("response", response),
        "gates_passed": gates_passed,
        "duration_ms": duration,
        "error": _optional_text("error", error),
    }
    return _event(f"build:{build_id}", "ExecutionLogged", data, meta)


def pattern_stored(
    pattern_id: str,
    name: str,
    description: str,
    code: str,
    language: str,
    tags: Sequence[str] = (),
    meta: dict[str, Any] | None = None,
) -> NewEvent:
    pattern_id = _key("pattern_id", pattern_id)
    data = {
        "pattern_id": pattern_id,
        "name": _text("name", name),
        "description": _text("description", description),
        "code": _text("code", code),
        "language": _text("language", language),
        "tags": _strings("tags", tags),
    }
    return _event(f"pattern:{pattern_id}", "PatternStored", data, meta)


def learning_recorded(
    learning_id: str,
    insight: str,
    category: str,
    build_id: str | None = None,
    task_id: str | None = None,
    pattern_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> NewEvent:
    learning_id = _key("learning_id", learning_id)
    data = {
        "learning_id": learning_id,
        "insight": _text("insight", insight),
        "category": _text("category", category),
        "build_id": _optional_key("build_id", build_id),
        "task_id": _optional_key("task_id", task_id),
        "pattern_id": _optional_key("pattern_id", pattern_id),
    }
    return _event(f"learning:{learning_id}", "LearningRecorded", data, meta)
