"""Spool benchmark (issue 6): a 100k-event file ingested as one atomic batch.

Figures, each beside its baseline from the same run:
- spool ingest rate (a checking pass over the file, then one
  ``append_stream`` transaction fed chunk by chunk, then the file removed)
  vs. the store's own rate for the same 100k events handed to
  ``append_batch`` already built in memory. Target: >= 0.5x.
- peak RSS of each (a child process per measurement: its VmHWM), beside a
  child that only opens the store. Target: the spool's peak at most 1.5x the
  direct batch's peak (the streamed ingest lands far below it).

``python -m bench.bench_spool [--quick]``; a missed target prints
"TARGET MISSED" and makes ``main`` return 1.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

EVENTS = 100_000
STREAMS = 10
RATE_RATIO_TARGET = 0.5
RSS_RATIO_TARGET = 1.5


def _write_file(path: Path, count: int) -> None:
    from atlasd.events.ids import new_event_id

    pad = "x" * 150  # ~200-byte payloads, as in the store's figures
    with path.open("wb") as f:
        for i in range(count):
            line = {
                "stream": f"tool:{i % STREAMS}",
                "type": "Tick",
                "data": {"i": i, "pad": pad},
                "event_id": new_event_id(),
            }
            f.write(json.dumps(line).encode() + b"\n")


async def _child(mode: str, root: Path, file: Path) -> dict[str, float]:
    from atlasd.daemon.spool import ingest_file, parse_spool_file
    from atlasd.eventlog import EventStore, StoreConfig

    store = await EventStore.open(StoreConfig(data_dir=root / "data"))
    try:
        if mode == "open":
            return {"seconds": 0.0, "events": 0}
        if mode == "direct":
            events = parse_spool_file(file)  # built before the clock starts
            started = time.perf_counter()
            await store.append_batch(events)
            return {"seconds": time.perf_counter() - started, "events": len(events)}
        started = time.perf_counter()
        report = await ingest_file(store, file)
        return {"seconds": time.perf_counter() - started, "events": report.events}
    finally:
        await store.close()


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec from the forking parent, so under ``python -m bench`` (a large parent by
    then) every child would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(mode: str, root: str, file: str) -> None:
    result = asyncio.run(_child(mode, Path(root), Path(file)))
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _run_child(mode: str, root: Path, file: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_spool", "--child", mode, str(root), str(file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return msgspec.json.decode(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    count = 10_000 if "--quick" in argv else EVENTS
    work = Path(tempfile.mkdtemp(prefix="bench-spool-", dir="/tmp"))
    try:
        source = work / "events.ndjson"
        _write_file(source, count)
        size_mb = source.stat().st_size / 1e6
        results = {}
        for mode in ("open", "direct", "spool"):
            root = work / mode
            root.mkdir()
            file = root / "spool.ndjson"
            shutil.copyfile(source, file)
            results[mode] = _run_child(mode, root, file)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    direct_rate = results["direct"]["events"] / results["direct"]["seconds"]
    spool_rate = results["spool"]["events"] / results["spool"]["seconds"]
    rate_ratio = spool_rate / direct_rate
    rss_ratio = results["spool"]["peak_rss_mb"] / results["direct"]["peak_rss_mb"]
    print(f"file: {count} events, {size_mb:.1f} MB")
    print(
        f"spool ingest (parse + one batch + remove): {spool_rate:,.0f} events/s "
        f"({results['spool']['seconds']:.2f} s)"
    )
    print(
        f"baseline, store append_batch of the same events built in memory: "
        f"{direct_rate:,.0f} events/s ({results['direct']['seconds']:.2f} s)"
    )
    print(f"ratio: {rate_ratio:.2f}x (target >= {RATE_RATIO_TARGET}x)")
    print(
        f"peak RSS: spool {results['spool']['peak_rss_mb']:.0f} MB, direct batch "
        f"{results['direct']['peak_rss_mb']:.0f} MB, store opened only "
        f"{results['open']['peak_rss_mb']:.0f} MB; ratio {rss_ratio:.2f}x "
        f"(target <= {RSS_RATIO_TARGET}x)"
    )
    missed = 0
    if rate_ratio < RATE_RATIO_TARGET:
        print("TARGET MISSED: spool ingest rate")
        missed = 1
    if rss_ratio > RSS_RATIO_TARGET:
        print("TARGET MISSED: spool ingest peak RSS")
        missed = 1
    return missed


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:5])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
