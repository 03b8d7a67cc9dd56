"""Run every benchmark module in one process run, so ratios compare like with like.

Each ``bench/bench_*.py`` defines ``main(argv) -> int``; a non-zero result means
a target was missed (the module says which). ``python -m bench store`` runs
only the modules whose name contains ``store``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_") and (not argv or any(a in info.name for a in argv))
    )
    missed: list[str] = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        if module.main([]) != 0:
            missed.append(name)
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    if missed:
        print(f"\ntargets missed in: {', '.join(missed)}")
        return 1
    print("\nall benchmark targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
