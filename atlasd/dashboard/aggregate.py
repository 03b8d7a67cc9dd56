"""Execution figures by agent and by model, computed from a bounded set of rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["GroupStats", "group_executions"]


class GroupStats(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's or one model's executions: how many, how long, how often every gate passed."""

    name: str
    executions: int
    mean_duration_ms: float | None
    max_duration_ms: int | None
    gate_pass_rate: float | None
    failed: int


def group_executions(rows: Iterable[dict[str, Any]], column: str) -> list[GroupStats]:
    """Stats of ``rows`` grouped by ``column`` (``agent`` or ``model``), most executions first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = row.get(column)
        groups.setdefault(name if isinstance(name, str) and name else "(none)", []).append(row)
    stats = [_stats(name, members) for name, members in groups.items()]
    stats.sort(key=lambda s: (-s.executions, s.name))
    return stats


def _stats(name: str, rows: list[dict[str, Any]]) -> GroupStats:
    durations = [
        r["duration_ms"]
        for r in rows
        if isinstance(r.get("duration_ms"), int) and not isinstance(r.get("duration_ms"), bool)
    ]
    gates = [r["gates_passed"] for r in rows if isinstance(r.get("gates_passed"), bool)]
    return GroupStats(
        name=name,
        executions=len(rows),
        mean_duration_ms=sum(durations) / len(durations) if durations else None,
        max_duration_ms=max(durations) if durations else None,
        gate_pass_rate=sum(gates) / len(gates) if gates else None,
        failed=sum(1 for r in rows if r.get("error")),
    )
