"""Pack engine benchmarks: each figure beside its baseline measured in the same run.

Targets:
- rebuild of the atlas views >= 1.0x the hand-written fold it replaced
  (``bench/legacy_fold.py``), over the same log, in the same harness;
- rebuild over a mixed log of every pack >= 100k events/s;
- batched appends (1,000 per batch) with every pack on >= 0.9x the same
  appends folded by the hand-written fold.

``python -m bench.bench_packs [--quick]``; a missed target prints
"TARGET MISSED" and makes ``main`` return 1.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.replay import CHUNK, KEEP_ROWS
from atlasd.eventlog.sql import connect
from atlasd.eventlog.writer import Writer
from atlasd.packs import tables
from atlasd.packs.engine import Fold
from atlasd.packs.registry import PackSet, builtin_packs
from bench import legacy_fold
from bench.bench_store import atlas_events

EVENTS = 100_000
REPEATS = 3
#: The refolds are short: more alternating runs, so that a burst of load elsewhere on the
#: machine hits both sides alike.
FOLD_REPEATS = 7
ATLAS_VIEWS = ("builds", "tasks", "executions", "patterns", "learnings")


def mixed_events(count: int) -> Iterator[NewEvent]:
    """Every pack's events in turn: ATLAS builds, Mastra threads and runs, workflows,
    assets, deployments and agent jobs, about a sixth of the log each."""
    atlas = atlas_events(count)
    n = 0
    while True:
        i = n
        batch: list[NewEvent] = [e for _, e in zip(range(6), atlas, strict=False)]
        thread = f"th-{i // 5}"
        batch += [
            NewEvent(
                stream=f"thread:{thread}",
                type="ThreadSaved",
                data={"thread_id": thread, "resource_id": "user-1", "title": "Chat"},
            ),
            NewEvent(
                stream=f"thread:{thread}",
                type="MessageSaved",
                data={
                    "message_id": f"m-{i}",
                    "thread_id": thread,
                    "role": "user",
                    "content": {"parts": [{"type": "text", "text": "hello there"}]},
                },
            ),
            NewEvent(
                stream=f"workflow_run:r-{i % 500}",
                type="WorkflowRunSaved",
                data={
                    "run_id": f"r-{i % 500}",
                    "workflow_name": "triage",
                    "status": "running",
                    "snapshot": {"step": i % 7},
                },
            ),
            NewEvent(
                stream=f"trace:tr-{i // 10}",
                type="TraceRecorded",
                data={
                    "trace_id": f"tr-{i // 10}",
                    "span_id": f"s-{i}",
                    "name": "agent.generate",
                    "start_ms": i,
                    "end_ms": i + 5,
                },
            ),
            NewEvent(
                stream=f"eval:e-{i}",
                type="EvalRecorded",
                data={"eval_id": f"e-{i}", "agent_name": "a", "metric_name": "m", "score": 0.5},
            ),
            NewEvent(
                stream=f"workflow:w-{i % 50}",
                type="WorkflowExecutionSaved",
                data={
                    "execution_id": f"x-{i // 2}",
                    "workflow_id": f"w-{i % 50}",
                    "status": "running",
                    "state": {"n": i},
                },
            ),
            NewEvent(
                stream=f"asset:a-{i % 300}",
                type="AssetDownloaded",
                data={"asset_id": f"a-{i % 300}"},
            ),
            NewEvent(
                stream=f"asset:a-{i % 300}",
                type="AssetSaved",
                data={"asset_id": f"a-{i % 300}", "name": "x", "category": "c", "tags": ["t"]},
            ),
            NewEvent(
                stream=f"deployment:d-{i // 2}",
                type="DeploymentRecorded" if i % 2 == 0 else "DeploymentStatusChanged",
                data={"deployment_id": f"d-{i // 2}", "site_id": "s", "status": "ready"},
            ),
            NewEvent(
                stream=f"agent_job:j-{i // 2}",
                type="AgentJobStarted" if i % 2 == 0 else "AgentJobFinished",
                data={"job_id": f"j-{i // 2}", "agent": "coder", "status": "completed"},
            ),
        ]
        if i % 40 == 39:
            batch.append(
                NewEvent(
                    stream=f"thread:th-{i // 5 - 3}",
                    type="ThreadDeleted",
                    data={"thread_id": f"th-{i // 5 - 3}"},
                )
            )
        for event in batch:
            yield event
            n += 1
            if n >= count:
                return


async def append_all(data_dir: Path, events: list[NewEvent], batch: int = 1000) -> float:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            await store.append_batch(events[i : i + batch])
        return len(events) / (time.perf_counter() - started)


async def append_all_legacy(data_dir: Path, events: list[NewEvent], batch: int = 1000) -> float:
    """The same appends with the writer folding through the hand-written fold."""
    original = Writer._new_fold

    def legacy(self: Writer, conn: sqlite3.Connection) -> Any:
        conn.execute(legacy_fold.PATTERN_TAGS_DDL)
        return legacy_fold.Fold(conn, dict.fromkeys(ATLAS_VIEWS, 0), keep_rows=20_000)

    Writer._new_fold = legacy  # type: ignore[method-assign]
    try:
        return await append_all(data_dir, events, batch)
    finally:
        Writer._new_fold = original  # type: ignore[method-assign]


def fold_rate(data_dir: Path, make_fold: Callable[[sqlite3.Connection], Any]) -> float:
    """Refold the atlas views of a data dir the way ``rebuild`` does: tables without
    indexes, chunks of CHUNK events, a commit per chunk, indexes at the end."""
    from atlasd.eventlog.replay import _chunk_sql, _chunks

    packs = builtin_packs()
    atlas = PackSet([packs.packs[0]])
    conn = connect(db_path(data_dir), synchronous="NORMAL")
    try:
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        tables.drop_view_tables(conn, ATLAS_VIEWS)
        conn.execute("DROP TABLE IF EXISTS view_pattern_tags")
        tables.create_view_tables(conn, packs, ATLAS_VIEWS, indexes=False)
        conn.execute("COMMIT")
        fold = make_fold(conn)
        last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        for events, end in _chunks(conn, _chunk_sql(atlas), 0, last, atlas.event_types):
            conn.execute("BEGIN IMMEDIATE")
            fold.apply_many(events)
            fold.flush(checkpoint=end)
            conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        tables.create_view_tables(conn, packs, ATLAS_VIEWS)
        conn.execute("COMMIT")
        return int(last) / (time.perf_counter() - started)
    finally:
        conn.close()


def _legacy_fold(conn: sqlite3.Connection) -> Any:
    conn.execute(legacy_fold.PATTERN_TAGS_DDL)
    return legacy_fold.Fold(conn, dict.fromkeys(ATLAS_VIEWS, 0), fresh=True, keep_rows=KEEP_ROWS)


def _pack_fold(conn: sqlite3.Connection) -> Any:
    return Fold(
        conn, builtin_packs(), dict.fromkeys(ATLAS_VIEWS, 0), fresh=True, keep_rows=KEEP_ROWS
    )


def _line(name: str, value: float, baseline: float, target: float) -> bool:
    ratio = value / baseline if baseline else float("inf")
    met = ratio >= target
    print(
        f"{name:<52} {value:>10,.0f} ev/s  baseline {baseline:>10,.0f} ev/s"
        f"  ratio {ratio:5.2f}x (target >= {target}x){'' if met else '  TARGET MISSED'}",
        flush=True,
    )
    return met


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    count = EVENTS // (10 if quick else 1)
    tmp = Path(tempfile.mkdtemp(prefix="atlasd-bench-packs-", dir="/tmp"))
    ok = True
    try:
        atlas = list(atlas_events(count))
        mixed = list(mixed_events(count))
        assert CHUNK > 0

        # batched appends: the hand-written fold first, then the pack engine, alternating
        old = new = new_mixed = 0.0
        for i in range(REPEATS):
            old = max(old, asyncio.run(append_all_legacy(tmp / f"old{i}", atlas)))
            new = max(new, asyncio.run(append_all(tmp / f"new{i}", atlas)))
            new_mixed = max(new_mixed, asyncio.run(append_all(tmp / f"mixed{i}", mixed)))
        ok &= _line("batched appends 1000/batch, atlas log, all packs on", new, old, 0.9)
        _line("batched appends 1000/batch, mixed log of all packs", new_mixed, old, 0)

        old_fold = new_fold = 0.0
        for _ in range(FOLD_REPEATS):
            old_fold = max(old_fold, fold_rate(tmp / "new0", _legacy_fold))
            new_fold = max(new_fold, fold_rate(tmp / "new0", _pack_fold))
        ok &= _line(f"refold of the atlas views, {count:,} events", new_fold, old_fold, 1.0)

        mixed_rebuild = 0.0
        for _ in range(REPEATS):
            report = rebuild(tmp / "mixed0")
            mixed_rebuild = max(mixed_rebuild, report.events / report.seconds)
        ok &= _line(
            f"rebuild of every view, mixed log, {count:,} events", mixed_rebuild, 100_000, 1
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
