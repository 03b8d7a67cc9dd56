"""The rows of the ATLAS views (docs/views.md), typed, and what reading them needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec

__all__ = ["Build", "Execution", "Learning", "Pattern", "Row", "Task", "pattern_filter"]


class Build(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the ``builds`` view."""

    build_id: str
    prd_id: str | None
    prd_name: str | None
    status: str
    error: str | None
    started_at: int | None
    completed_at: int | None
    tasks_total: int
    tasks_done: int
    tasks_failed: int


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the ``tasks`` view."""

    build_id: str
    task_id: str
    title: str | None
    agent: str | None
    status: str
    dependencies: list[str]
    phase: int | float | None
    attempts: int
    error: str | None
    created_at: int
    updated_at: int


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the ``executions`` view (prompt and response stay in the event)."""

    event_id: str
    build_id: str
    task_id: str
    agent: str | None
    model: str | None
    gates_passed: bool | None
    duration_ms: int | float | None
    error: str | None
    recorded_at: int


class Pattern(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the ``patterns`` view."""

    pattern_id: str
    name: str | None
    description: str | None
    code: str | None
    language: str | None
    tags: list[str]
    created_at: int


class Learning(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the ``learnings`` view."""

    learning_id: str
    insight: str | None
    category: str | None
    build_id: str | None
    task_id: str | None
    pattern_id: str | None
    recorded_at: int


#: One of the row types, for methods that read any of them.
Row = TypeVar("Row", Build, Task, Execution, Pattern, Learning)


def pattern_filter(language: str | None, tags: Sequence[str] | None) -> dict[str, Any] | None:
    """The ``patterns`` filter for ``language`` and ``tags`` (None: every pattern)."""
    query: dict[str, Any] = {}
    if language is not None:
        query["language"] = language
    if tags:
        query["tags"] = list(tags)
    return query or None
