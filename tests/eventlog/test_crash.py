"""Crash safety: a writer killed with SIGKILL loses nothing it acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, StoreConfig, verify

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 300, 3000])
async def test_sigkill_loses_no_acknowledged_event(data_dir: Path, kill_after: int) -> None:
    """Every ack printed before SIGKILL is in the log after reopening, at its seq."""
    acks: list[tuple[int, str]] = []
    with subprocess.Popen(  # noqa: ASYNC220 - the child runs on its own; we only read lines
        [sys.executable, "-m", "tests.eventlog.crash_writer", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                seq, event_id = line.split()
                acks.append((int(seq), event_id))
                if len(acks) >= kill_after:
                    break
            os.kill(child.pid, signal.SIGKILL)
            # acks printed after our last read but before the kill count too
            rest = child.stdout.read()
        finally:
            child.kill()
    for line in rest.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[1]) == 36:  # the kill may cut the last line short
            acks.append((int(parts[0]), parts[1]))
    assert child.returncode == -signal.SIGKILL
    assert len(acks) >= kill_after

    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        stored = {e.seq: e.event_id async for e in store.iter_events()}
        assert list(stored) == list(range(1, store.last_seq + 1))
    for seq, event_id in acks:
        assert stored.get(seq) == event_id, f"acknowledged seq {seq} lost"
    report = verify(data_dir)
    assert report.ok, report.findings
