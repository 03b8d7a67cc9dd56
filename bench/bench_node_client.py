"""Node client benchmark: what ``atlasd-client`` adds on top of the socket.

Against one real daemon subprocess, each figure beside a raw-socket baseline
measured by the same Node process in the same run (``clients/node/bench/client.mjs``):
- ``AtlasdClient``, 20k appends pipelined on one connection (windows of
  1,000 concurrent calls), vs. raw NDJSON pipelining (1,000 request lines
  written, then their 1,000 answers read). Target: >= 0.5x.
- one append at a time: p50/p99 latency vs. a raw socket doing the same.
  Target: p99 at most 1.5x the raw p99.

Raw and client work alternate (window by window, append by append) so that
the noise of a shared machine falls on both alike.

``python -m bench.bench_node_client [--quick]``; "TARGET MISSED" and exit 1 when missed.
Needs ``clients/node/node_modules`` (``make bench`` installs it); builds the client first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_client import P99_RATIO_TARGET, PIPELINE_RATIO_TARGET, _start, _stop

PIPELINED = 20_000
SEQUENTIAL = 2_000
_PACKAGE = Path(__file__).resolve().parent.parent / "clients" / "node"


def _build() -> None:
    subprocess.run(["npm", "run", "--silent", "build"], cwd=_PACKAGE, check=True)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    pipelined = 5_000 if quick else PIPELINED
    sequential = 500 if quick else SEQUENTIAL
    _build()
    root = Path(tempfile.mkdtemp(prefix="bench-nc-", dir="/tmp"))
    try:
        proc = _start(root)
        try:
            out = subprocess.run(
                [
                    "node",
                    str(_PACKAGE / "bench" / "client.mjs"),
                    str(root / "a.sock"),
                    str(pipelined),
                    str(sequential),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    figures = json.loads(out)
    pipe, seq = figures["pipelined"], figures["sequential"]
    pipe_ratio = pipe["client"] / pipe["raw"]
    p99_ratio = seq["client"]["p99"] / seq["raw"]["p99"]
    print(
        f"pipelined appends: Node AtlasdClient {pipe['client']:,.0f}/s, raw socket "
        f"{pipe['raw']:,.0f}/s, ratio {pipe_ratio:.2f}x (target >= {PIPELINE_RATIO_TARGET}x)"
    )
    print(
        f"one at a time: Node AtlasdClient p50 {seq['client']['p50']:.3f} ms p99 "
        f"{seq['client']['p99']:.3f} ms; raw p50 {seq['raw']['p50']:.3f} ms p99 "
        f"{seq['raw']['p99']:.3f} ms; p99 ratio {p99_ratio:.2f}x (target <= {P99_RATIO_TARGET}x)"
    )
    missed = 0
    if pipe_ratio < PIPELINE_RATIO_TARGET:
        print("TARGET MISSED: pipelined Node AtlasdClient rate")
        missed = 1
    if p99_ratio > P99_RATIO_TARGET:
        print("TARGET MISSED: one-at-a-time Node AtlasdClient p99 latency")
        missed = 1
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
