"""Client benchmark: what the client library adds on top of the socket.

Against one real daemon subprocess, each figure beside a raw-socket baseline
from the same run:
- AsyncClient, 20k appends from concurrent tasks pipelined on one connection,
  vs. raw NDJSON pipelining (1,000 request lines written, then their 1,000
  answers read). Target: >= 0.5x.
- blocking Client, one append at a time: p50/p99 latency vs. a raw blocking
  socket doing the same. Target: p99 at most 1.5x the raw p99.
- spooled append with the daemon stopped (one fsynced file per append):
  p50/p99 latency, printed.

``python -m bench.bench_client [--quick]``; "TARGET MISSED" and exit 1 when missed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINED = 20_000
WINDOW = 1_000
SEQUENTIAL = 2_000
SPOOLED = 300
PIPELINE_RATIO_TARGET = 0.5
P99_RATIO_TARGET = 1.5


def _start(root: Path) -> subprocess.Popen[bytes]:
    sock = root / "a.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlasd.daemon",
            "--socket",
            str(sock),
            "--data-dir",
            str(root / "data"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
                s.sendall(b'{"op":"ping"}\n')
                if b'"ok":true' in s.recv(4096):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("daemon did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def _line(i: int, stream: str) -> bytes:
    return (
        json.dumps(
            {
                "op": "append",
                "id": i,
                "stream": stream,
                "type": "T",
                "data": {"i": i, "p": "x" * 150},
            }
        ).encode()
        + b"\n"
    )


def _raw_pipelined(path: Path, n: int) -> float:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        f = s.makefile("rb")
        started = time.perf_counter()
        for base in range(0, n, WINDOW):
            s.sendall(b"".join(_line(base + i, f"raw:{i % 10}") for i in range(WINDOW)))
            for _ in range(WINDOW):
                assert b'"ok":true' in f.readline()
        return n / (time.perf_counter() - started)


async def _client_pipelined(path: Path, n: int) -> float:
    from atlasd.client import AsyncClient

    async with AsyncClient(path, spool=False) as client:
        await client.ping()
        started = time.perf_counter()
        for base in range(0, n, WINDOW):
            await asyncio.gather(
                *(
                    client.append(f"cli:{i % 10}", "T", {"i": base + i, "p": "x" * 150})
                    for i in range(WINDOW)
                )
            )
        return n / (time.perf_counter() - started)


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def _raw_sequential(path: Path, n: int) -> list[float]:
    times = []
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        f = s.makefile("rb")
        for i in range(n):
            started = time.perf_counter()
            s.sendall(_line(i, "rawseq"))
            assert b'"ok":true' in f.readline()
            times.append(time.perf_counter() - started)
    return times


def _client_sequential(path: Path, n: int) -> list[float]:
    from atlasd.client import Client

    times = []
    with Client(path, spool=False) as client:
        client.ping()
        for i in range(n):
            started = time.perf_counter()
            client.append("cliseq", "T", {"i": i, "p": "x" * 150})
            times.append(time.perf_counter() - started)
    return times


def _spooled(path: Path, data_dir: Path, n: int) -> list[float]:
    from atlasd.client import Client

    times = []
    with Client(path, data_dir=data_dir) as client:
        for i in range(n):
            started = time.perf_counter()
            outcome = client.append("spooled", "T", {"i": i})
            times.append(time.perf_counter() - started)
            assert outcome.spooled
    return times


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    pipelined = 5_000 if quick else PIPELINED
    sequential = 500 if quick else SEQUENTIAL
    root = Path(tempfile.mkdtemp(prefix="bench-cl-", dir="/tmp"))
    sock = root / "a.sock"
    try:
        proc = _start(root)
        try:
            raw_rate = _raw_pipelined(sock, pipelined)
            client_rate = asyncio.run(_client_pipelined(sock, pipelined))
            raw_seq = _raw_sequential(sock, sequential)
            client_seq = _client_sequential(sock, sequential)
        finally:
            _stop(proc)
        spooled = _spooled(sock, root / "data", SPOOLED)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    pipe_ratio = client_rate / raw_rate
    p99_ratio = _pct(client_seq, 0.99) / _pct(raw_seq, 0.99)
    print(
        f"pipelined appends: AsyncClient {client_rate:,.0f}/s, raw socket {raw_rate:,.0f}/s, "
        f"ratio {pipe_ratio:.2f}x (target >= {PIPELINE_RATIO_TARGET}x)"
    )
    print(
        f"one at a time: Client p50 {_pct(client_seq, 0.5):.3f} ms p99 "
        f"{_pct(client_seq, 0.99):.3f} ms; raw p50 {_pct(raw_seq, 0.5):.3f} ms p99 "
        f"{_pct(raw_seq, 0.99):.3f} ms; p99 ratio {p99_ratio:.2f}x (target <= {P99_RATIO_TARGET}x)"
    )
    print(
        f"spooled append (daemon down, fsynced file each): p50 {_pct(spooled, 0.5):.3f} ms "
        f"p99 {_pct(spooled, 0.99):.3f} ms"
    )
    missed = 0
    if pipe_ratio < PIPELINE_RATIO_TARGET:
        print("TARGET MISSED: pipelined AsyncClient rate")
        missed = 1
    if p99_ratio > P99_RATIO_TARGET:
        print("TARGET MISSED: blocking Client p99 latency")
        missed = 1
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
