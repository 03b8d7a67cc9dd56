"""The spool watcher running as the daemon runs it: start-up scan, then watchfiles."""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from atlasd.daemon.spool import ingest_file, run_spool
from atlasd.eventlog import EventStore
from atlasd.events.ids import new_event_id

#: Generous bound for a wake-up the test waits for; reaching it fails the test.
WAIT_S = 20.0


def _drop(spool_dir: Path, name: str, body: bytes) -> Path:
    temp = spool_dir / f".tmp-{name}.part"
    temp.write_bytes(body)
    final = spool_dir / name
    os.replace(temp, final)
    return final


def _events(n: int, stream: str = "tool:w") -> bytes:
    return b"".join(
        json.dumps(
            {"stream": stream, "type": "Tick", "data": {"i": i}, "event_id": new_event_id()}
        ).encode()
        + b"\n"
        for i in range(n)
    )


async def _until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT_S):
        while not condition():  # noqa: ASYNC110 - the state belongs to another task
            await anyio.sleep(0.02)


@asynccontextmanager
async def _watching(store: EventStore, spool_dir: Path) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_spool(store, spool_dir, rescan_interval=0.5))
        yield
        tg.cancel_scope.cancel()


async def test_files_dropped_before_start_are_ingested_at_start(
    store: EventStore, spool_dir: Path
) -> None:
    """What waited in the spool while the daemon was down is appended when it starts."""
    _drop(spool_dir, "1.ndjson", _events(3))
    _drop(spool_dir, "2.ndjson", _events(2))
    async with _watching(store, spool_dir):
        await _until(lambda: store.last_seq == 5)
    assert sorted(os.listdir(spool_dir)) == ["rejected"]


async def test_a_file_dropped_while_running_is_ingested(store: EventStore, spool_dir: Path) -> None:
    """A file renamed into the spool while the watcher runs is picked up and removed."""
    async with _watching(store, spool_dir):
        await anyio.sleep(0.1)
        path = _drop(spool_dir, "live.ndjson", _events(4))
        await _until(lambda: store.last_seq == 4 and not path.exists())


async def test_cancelling_the_watcher_ends_it_through_its_stop_event(
    store: EventStore, spool_dir: Path
) -> None:
    """Cancellation ends run_spool while the watcher thread sits in a wait of an hour.

    With a one-hour rescan interval only the stop event can end the thread's
    wait; if it were not set on cancel, the task group below would not exit
    (and the test would fail on its timeout).
    """
    ended = anyio.Event()

    async def watch() -> None:
        try:
            await run_spool(store, spool_dir, rescan_interval=3600.0)
        finally:
            ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await anyio.sleep(0.1)
        path = _drop(spool_dir, "live.ndjson", _events(2))
        # ingested through a notification: the watcher thread is running its wait
        await _until(lambda: store.last_seq == 2 and not path.exists())
        # let the removal's own notification pass, so the thread is back in its long wait
        await anyio.sleep(0.5)
        assert not ended.is_set()
        tg.cancel_scope.cancel()
    assert ended.is_set()


async def test_a_partial_file_is_not_read_until_renamed(store: EventStore, spool_dir: Path) -> None:
    """A half-written temp file survives scans untouched; once renamed it is ingested."""
    body = _events(3)
    temp = spool_dir / ".tmp-slow.part"
    async with _watching(store, spool_dir):
        temp.write_bytes(body[:-10])  # a writer in the middle of its work
        # Another file going through proves scans ran while the partial one was there.
        marker = _drop(spool_dir, "marker.ndjson", _events(1, stream="tool:m"))
        await _until(lambda: not marker.exists())
        assert temp.read_bytes() == body[:-10]
        assert store.last_seq == 1
        assert list((spool_dir / "rejected").iterdir()) == []
        with temp.open("ab") as f:
            f.write(body[-10:])
        os.replace(temp, spool_dir / "slow.ndjson")
        await _until(lambda: store.last_seq == 4)
    assert list((spool_dir / "rejected").iterdir()) == []


async def test_a_bad_file_does_not_stop_the_watcher(store: EventStore, spool_dir: Path) -> None:
    """After rejecting a bad file the watcher still ingests the next good one."""
    async with _watching(store, spool_dir):
        _drop(spool_dir, "1-bad.ndjson", b"garbage\n")
        _drop(spool_dir, "2-good.ndjson", _events(2))
        await _until(lambda: store.last_seq == 2)
        await _until(lambda: (spool_dir / "rejected" / "1-bad.ndjson.reason").exists())


@pytest.mark.slow
async def test_a_file_of_100k_events_is_one_batch(store: EventStore, spool_dir: Path) -> None:
    """100,000 events in one file are appended completely, in order, as one batch."""
    n = 100_000
    path = _drop(spool_dir, "big.ndjson", _events(n, stream="tool:big"))
    started = time.perf_counter()
    report = await ingest_file(store, path)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"100k-event spool file: {elapsed:.2f}s, peak RSS {peak_mb:.0f} MB")
    assert (report.events, report.duplicates) == (n, 0)
    assert store.last_seq == n
    last = await store.read(n - 1, limit=1)
    assert last[0].data == {"i": n - 1}
    assert not path.exists()
