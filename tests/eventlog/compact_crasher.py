"""A child process for the compaction crash test: dies by SIGKILL at one step.

``python -m tests.eventlog.compact_crasher DATA_DIR STEP N``: runs a compaction
(everything, segments of 100 events) and kills itself with SIGKILL the Nth
time it is about to enter STEP (``_write``, ``_record``, ``_delete`` or
``_vacuum`` of :mod:`atlasd.eventlog.compact`), or after STEP has run once
when STEP ends with ``+``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from atlasd.eventlog import compact as module


def main(data_dir: Path, step: str, nth: int) -> None:
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
    module.compact(data_dir, older_than_ms=0, synced_only=False, segment_events=100)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
