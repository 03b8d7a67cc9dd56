"""A child process for the crash test: appends forever, printing each acknowledgement.

``python -m tests.eventlog.crash_writer DATA_DIR``: 16 concurrent appenders
(single events and small batches); one ``seq event_id`` line per acknowledged
event, flushed before the next append of that appender.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, StoreConfig


async def main(data_dir: Path) -> None:
    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    out = sys.stdout

    async def appender(worker: int) -> None:
        i = 0
        while True:
            i += 1
            data = {"build_id": f"b{worker}", "task_id": f"t{i}", "status": "running"}
            event = NewEvent(stream=f"build:b{worker}", type="TaskStatusChanged", data=data)
            if i % 5:
                results = [await store.append(event)]
            else:
                results = await store.append_batch([event, event.__copy__()])
            out.write("".join(f"{r.seq} {r.event_id}\n" for r in results))
            out.flush()

    await asyncio.gather(*(appender(w) for w in range(16)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
