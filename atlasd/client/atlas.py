"""The ATLAS facade: build, task, execution, pattern and learning tracking.

A typed, durable version of the best-effort Convex facade tools used before:
every write is an event (docs/views.md) that the daemon appends, or, when
no daemon answers, that lands in the spool and is appended when it starts.
Nothing is dropped silently: bad arguments raise
:class:`~atlasd.errors.InvalidValue` before anything is written, and errors
the daemon reports raise their :mod:`atlasd.errors` class.

Reads (``query_patterns``, ``builds``, ``tasks``, ``executions``, ``patterns``,
``learnings``) follow every page of their view (or stop at ``limit`` rows),
need a running daemon and
raise :class:`~atlasd.errors.DaemonUnreachable` without one. The other built-in
packs' methods (``save_thread``, ``messages``, ``record_deployment``,
``latest_deployment``, ``start_agent_job`` ...) come from
:mod:`atlasd.client.pack_facade`.

Example::

    async with AsyncAtlas() as atlas:
        build_id = await atlas.start_build("prd-7", "Login page")
        await atlas.log_task(build_id, "t1", "Write form", "coder", "pending", [], 1)
        await atlas.set_task_status(build_id, "t1", "running")
        await atlas.complete_build(build_id, "completed")
"""

from __future__ import annotations

from .async_atlas import AsyncAtlas
from .atlas_rows import Build, Execution, Learning, Pattern, Task
from .sync_atlas import Atlas

__all__ = ["AsyncAtlas", "Atlas", "Build", "Execution", "Learning", "Pattern", "Task"]
