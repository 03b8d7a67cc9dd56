"""The largest safe Convex ingest batch, measured with Convex's transaction limits.

Runs ``convex/bench/largest_batch.ts`` (convex-test with ``transactionLimits``):
for each worst-case event mix it prints what one ingest transaction uses at
the default batch (``DEFAULT_MAX_EVENTS`` / ``DEFAULT_MAX_BYTES`` in
``convex/functions/lib/limits.ts``), the largest count each limit allows and
the largest batch that really passes ``POST /atlasd/ingest``. Target: the
default batch fits every mix with 10% headroom on every limit; the script
prints "TARGET MISSED" and this module returns 1 otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

_CONVEX = Path(__file__).resolve().parents[1] / "convex"


def main(argv: list[str]) -> int:
    node = shutil.which("node")
    if node is None:
        print("TARGET MISSED: node is not on PATH", flush=True)
        return 1
    if not (_CONVEX / "node_modules" / "tsx").is_dir():
        print("TARGET MISSED: convex/node_modules is missing; run `cd convex && npm ci`")
        return 1
    sys.stdout.flush()
    done = subprocess.run(
        [node, "--import", "tsx", "bench/largest_batch.ts", *argv], cwd=_CONVEX, check=False
    )
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
