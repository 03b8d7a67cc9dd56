"""The ATLAS facade :class:`AsyncAtlas`; :mod:`atlasd.client.atlas` describes it.

The blocking facade (:mod:`atlasd.client.sync_atlas`) is generated from the async
one (:mod:`atlasd.client.async_atlas`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import msgspec

from . import atlas_events as ev
from .async_client import AsyncClient
from .async_pack_facade import AsyncPackMethods
from .atlas_rows import Build, Execution, Learning, Pattern, Row, Task, pattern_filter
from .calls import Order
from .connection import AsyncResource
from .results import AppendOutcome

__all__ = ["AsyncAtlas"]


class AsyncAtlas(AsyncPackMethods, AsyncResource):
    """The facade over ``client`` (:class:`~atlasd.client.AsyncClient`; made from the same
    arguments when not given).

    ``meta`` is attached to every event written (e.g. ``{"tool": "orchestrator"}``).
    """

    def __init__(
        self,
        client: AsyncClient | None = None,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self._owns_client = client is None
        self.client = client or AsyncClient(socket_path, data_dir=data_dir)
        self.meta = meta

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def _write(self, event: Any) -> AppendOutcome:
        outcomes = await self.client.append_batch([event])
        return outcomes[0]

    async def start_build(self, prd_id: str, prd_name: str, build_id: str | None = None) -> str:
        """Record that a build started; returns its id (a new one unless given)."""
        build_id = build_id if build_id is not None else ev.new_id()
        await self._write(ev.build_started(build_id, prd_id, prd_name, self.meta))
        return build_id

    async def complete_build(
        self, build_id: str, status: ev.BuildStatus, error: str | None = None
    ) -> AppendOutcome:
        """Record that a build ended, ``completed`` or ``failed``."""
        return await self._write(ev.build_completed(build_id, status, error, self.meta))

    async def log_task(
        self,
        build_id: str,
        task_id: str,
        title: str,
        agent: str,
        status: ev.TaskStatus,
        dependencies: Sequence[str] = (),
        phase: int | float = 0,
    ) -> AppendOutcome:
        """Record a task of a build (again to update its title, agent, status...)."""
        event = ev.task_logged(
            build_id, task_id, title, agent, status, dependencies, phase, self.meta
        )
        return await self._write(event)

    async def set_task_status(
        self, build_id: str, task_id: str, status: ev.TaskStatus, error: str | None = None
    ) -> AppendOutcome:
        """Move a task to ``status``; ``running`` counts an attempt."""
        return await self._write(
            ev.task_status_changed(build_id, task_id, status, error, self.meta)
        )

    async def log_execution(
        self,
        build_id: str,
        task_id: str,
        agent: str,
        model: str,
        prompt: str,
        response: str,
        gates_passed: bool,
        duration_ms: int | float,
        error: str | None = None,
    ) -> str:
        """Record one model call of a task; returns the execution id (its event id)."""
        event = ev.execution_logged(
            build_id,
            task_id,
            agent,
            model,
            prompt,
            response,
            gates_passed,
            duration_ms,
            error,
            self.meta,
        )
        outcome = await self._write(event)
        return outcome.event_id

    async def store_pattern(
        self,
        name: str,
        description: str,
        code: str,
        language: str,
        tags: Sequence[str] = (),
        pattern_id: str | None = None,
    ) -> str:
        """Store (or, with an existing ``pattern_id``, replace) a pattern; returns its id."""
        pattern_id = pattern_id if pattern_id is not None else ev.new_id()
        event = ev.pattern_stored(pattern_id, name, description, code, language, tags, self.meta)
        await self._write(event)
        return pattern_id

    async def query_patterns(
        self, language: str | None = None, tags: Sequence[str] | None = None
    ) -> list[Pattern]:
        """Patterns in ``language`` having every tag of ``tags`` (both optional)."""
        rows = await self.client.query("patterns", filter=pattern_filter(language, tags))
        return msgspec.convert(rows, list[Pattern], strict=False)

    async def record_learning(
        self,
        insight: str,
        category: str,
        build_id: str | None = None,
        task_id: str | None = None,
        pattern_id: str | None = None,
        learning_id: str | None = None,
    ) -> str:
        """Record an insight, optionally tied to a build, task or pattern; returns its id."""
        learning_id = learning_id if learning_id is not None else ev.new_id()
        event = ev.learning_recorded(
            learning_id, insight, category, build_id, task_id, pattern_id, self.meta
        )
        await self._write(event)
        return learning_id

    async def builds(
        self, *, limit: int | None = None, order: Order = "asc", **filter: Any
    ) -> list[Build]:
        """Rows of the ``builds`` view, e.g. ``builds(status="failed")``: every page,
        or the first ``limit`` rows, in creation order (``order="desc"``: newest first)."""
        return await self._rows("builds", Build, filter, limit, order)

    async def tasks(
        self,
        build_id: str | None = None,
        *,
        limit: int | None = None,
        order: Order = "asc",
        **filter: Any,
    ) -> list[Task]:
        """The tasks of one build (of every build when ``build_id`` is None)."""
        if build_id is not None:
            filter["build_id"] = build_id
        return await self._rows("tasks", Task, filter, limit, order)

    async def executions(
        self, *, limit: int | None = None, order: Order = "asc", **filter: Any
    ) -> list[Execution]:
        """Rows of the ``executions`` view, e.g. ``executions(build_id="b-1")``."""
        return await self._rows("executions", Execution, filter, limit, order)

    async def patterns(
        self, *, limit: int | None = None, order: Order = "asc", **filter: Any
    ) -> list[Pattern]:
        """Rows of the ``patterns`` view, e.g. ``patterns(language="python")``."""
        return await self._rows("patterns", Pattern, filter, limit, order)

    async def learnings(
        self, *, limit: int | None = None, order: Order = "asc", **filter: Any
    ) -> list[Learning]:
        """Rows of the ``learnings`` view, e.g. ``learnings(category="testing")``."""
        return await self._rows("learnings", Learning, filter, limit, order)

    async def _rows(
        self,
        view: str,
        row_type: type[Row],
        filter: dict[str, Any],
        limit: int | None,
        order: Order,
    ) -> list[Row]:
        rows = await self.client.query(view, filter=filter or None, limit=limit, order=order)
        return msgspec.convert(rows, list[row_type], strict=False)  # type: ignore[valid-type]
