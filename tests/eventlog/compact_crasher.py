"""A child process for the compaction crash tests: dies by SIGKILL at one step.

``python -m tests.eventlog.compact_crasher DATA_DIR STEP N``: runs an offline
compaction (everything, segments of 100 events, 30 rows per move) and kills
itself with SIGKILL the Nth time it is about to enter STEP (``_write``,
``_record``, ``_move``, ``_delete`` or ``_vacuum`` of
:mod:`atlasd.eventlog.compact`), or after STEP has run once when STEP ends
with ``+``.

``... DATA_DIR STEP N --online``: the same through an open store, as the
daemon compacts (:class:`atlasd.eventlog.autocompact.Compactor`); STEP is
then one of :mod:`atlasd.eventlog.retention`'s ``write_rows``,
``record_step``, ``move_step`` or ``vacuum_step``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from atlasd.eventlog import EventStore, StoreConfig, retention
from atlasd.eventlog import compact as offline
from atlasd.eventlog.autocompact import Compactor

SEGMENT_EVENTS = 100
MOVE_CHUNK = 30


def _dying(module: ModuleType, step: str, nth: int) -> None:
    after = step.endswith("+")
    name = step.rstrip("+")
    original = getattr(module, name)
    calls = [0]

    def dying(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args)
        if calls[0] == nth and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, dying)


async def _online(data_dir: Path) -> None:
    rule = retention.CompactionRule(
        older_than_ms=0, synced_only=False, segment_events=SEGMENT_EVENTS
    )
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await Compactor(store, rule, move_chunk=MOVE_CHUNK, vacuum_pages=4).run()


def main(data_dir: Path, step: str, nth: int, online: bool) -> None:
    if online:
        _dying(retention, step, nth)
        asyncio.run(_online(data_dir))
        return
    _dying(offline, step, nth)
    offline.compact(
        data_dir,
        older_than_ms=0,
        synced_only=False,
        segment_events=SEGMENT_EVENTS,
        move_chunk=MOVE_CHUNK,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), "--online" in sys.argv[4:])
