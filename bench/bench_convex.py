"""The largest safe Convex ingest batch, measured with Convex's transaction limits.

Runs ``convex/bench/largest_batch.ts`` (convex-test with ``transactionLimits``):
for each worst-case event mix it prints what one ingest transaction uses at
the default batch (``DEFAULT_MAX_EVENTS`` / ``DEFAULT_MAX_BYTES`` in
``convex/functions/lib/limits.ts``), the largest count each limit allows and
the largest batch that really passes ``POST /atlasd/ingest``. Target: the
default batch fits every mix with 10% headroom on every limit; the script
prints "TARGET MISSED" and this module returns 1 otherwise.

Then ``convex/bench/double_rate.ts``: the Convex double's ingest rate after
4,000 events, stock convex-test (baseline) against the double's fast path;
target: at least 5x.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

_CONVEX = Path(__file__).resolve().parents[1] / "convex"
_SCRIPTS = ("bench/largest_batch.ts", "bench/double_rate.ts")


def main(argv: list[str]) -> int:
    del argv  # no options
    node = shutil.which("node")
    if node is None:
        print("TARGET MISSED: node is not on PATH", flush=True)
        return 1
    if not (_CONVEX / "node_modules" / "tsx").is_dir():
        print("TARGET MISSED: convex/node_modules is missing; run `cd convex && npm ci`")
        return 1
    missed = 0
    for script in _SCRIPTS:
        sys.stdout.flush()
        done = subprocess.run([node, "--import", "tsx", script], cwd=_CONVEX, check=False)
        missed += done.returncode != 0
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
