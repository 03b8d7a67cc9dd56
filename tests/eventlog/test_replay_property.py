"""Replay equals inline projection, for arbitrary sequences of events of every pack.

The data is drawn loosely (fields absent, mistyped, keys empty), as in a log
written before packs existed, so the events are appended past the schema check.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild, verify
from tests.eventlog.vectors import all_rows

# Weighted toward the task events, whose rows change most across group commits.
TYPES = [
    "BuildStarted", "BuildCompleted", "TaskLogged", "TaskLogged", "TaskStatusChanged",
    "TaskStatusChanged", "TaskStatusChanged", "ExecutionLogged", "PatternStored",
    "LearningRecorded", "SomethingElse",
    "ThreadSaved", "MessageSaved", "MessageSaved", "MessageSaved", "ThreadDeleted",
    "WorkflowRunSaved", "TraceRecorded", "EvalRecorded", "WorkflowSaved",
    "WorkflowExecutionSaved", "WorkflowExecutionSaved", "AssetSaved", "AssetDownloaded",
    "AssetDeleted", "DeploymentRecorded", "DeploymentStatusChanged", "AgentJobStarted",
    "AgentJobFinished",
]  # fmt: skip
MISSING = object()
# Few distinct keys, mostly valid, so that events often hit the same rows.
KEYS = ["a", "a", "a", "b", "b", "", None, 3, MISSING]
STATUSES = ["running", "running", "running", "done", "failed", None, 1, MISSING]
VALUES = [None, True, False, 0, -3, 2.5, "", "x", "yz", ["x"], ["x", "y"], [1], {"k": 1}]
FIELDS = [
    "prd_id", "prd_name", "error", "title", "agent", "dependencies", "phase", "model",
    "gates_passed", "duration_ms", "name", "description", "code", "language", "tags",
    "insight", "category", "resource_id", "metadata", "role", "content", "type", "snapshot",
    "workflow_name", "start_ms", "end_ms", "attributes", "score", "definition", "state",
    "site_id", "url", "commit", "agent", "result", "project_id", "parent_span_id", "trace_id",
]  # fmt: skip
PACK_KEYS = [
    "thread_id", "message_id", "run_id", "span_id", "eval_id", "workflow_id", "execution_id",
    "asset_id", "deployment_id", "job_id",
]  # fmt: skip


def random_batches(seed: int, count: int) -> list[tuple[str, dict[str, Any], int]]:
    """``count`` (type, data, copies) drawn from a seeded generator."""
    rng = random.Random(seed)
    batches = []
    for _ in range(count):
        data: dict[str, Any] = {
            f: rng.choice(VALUES) for f in rng.sample(FIELDS, rng.randint(0, 5))
        }
        for name, choices in (
            ("build_id", KEYS), ("task_id", KEYS), ("pattern_id", KEYS), ("learning_id", KEYS),
            ("status", STATUSES), *((key, KEYS) for key in PACK_KEYS),
        ):  # fmt: skip
            value = rng.choice(choices)
            if value is not MISSING:
                data[name] = value
        batches.append((rng.choice(TYPES), data, rng.randint(1, 3)))
    return batches


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 80), st.integers(1, 5))
def test_rebuild_gives_the_views_kept_inline(seed: int, count: int, group: int) -> None:
    """Views kept at append time (in groups and batches) equal a full replay of the log."""
    data_dir = Path(tempfile.mkdtemp(dir="/tmp")) / "data"
    try:
        asyncio.run(_check(data_dir, random_batches(seed, count), group))
    finally:
        shutil.rmtree(data_dir.parent)


async def _check(
    data_dir: Path, batches: list[tuple[str, dict[str, Any], int]], group: int
) -> None:
    half = len(batches) // 2
    # two store lifetimes: the second reads the first's view rows back from disk
    for part in (batches[:half], batches[half:]):
        async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
            pending = []
            for t, (event_type, data, copies) in enumerate(part, 1):
                stream = f"s:{data.get('build_id')}"
                batch = [NewEvent(stream=stream, type=event_type, data=data)] * copies
                pending.append(store.append_batch(batch, recorded_at=t, check_schema=False))
                if t % group == 0:  # `group` batches share a group commit
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
            inline = await all_rows(store)
    report = verify(data_dir)
    assert report.ok, report.findings
    rebuild(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert await all_rows(store) == inline
