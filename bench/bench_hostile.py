"""Memory under one hostile client, against the same daemon's RSS before it.

Target: one hostile client doing everything at once (200 pipelined 10,000-event
reads it never reads, 100 watches of a 10,000-row view it never reads while
the view keeps changing, a 1 GiB sparse spool file with no newline) keeps the
daemon under 300 MB RSS (VmHWM, the peak), and another client is still
answered within 2 s.

``python -m bench.bench_hostile``; a missed target prints "TARGET MISSED" and
makes ``main`` return 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RSS_LIMIT_MB = 300
PING_LIMIT_S = 2.0
VIEW_ROWS = 10_000
WATCHES = 100
READS = 200
LARGE_EVENTS = 400
LARGE_BYTES = 50_000


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(path))
    return sock


def _request(path: Path, message: dict[str, object], timeout: float = 30.0) -> dict[str, object]:
    with _connect(path) as sock:
        sock.settimeout(timeout)
        sock.sendall(json.dumps(message).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    answer: dict[str, object] = json.loads(buf)
    return answer


def _fill(path: Path) -> None:
    with _connect(path) as sock:
        reader = sock.makefile("rb")
        for start in range(0, VIEW_ROWS, 1000):
            events = [
                {
                    "stream": f"build:b-{i}",
                    "type": "BuildStarted",
                    "data": {"build_id": f"b-{i}", "prd_id": "p", "prd_name": "n" * 40},
                }
                for i in range(start, start + 1000)
            ]
            sock.sendall(json.dumps({"op": "append_batch", "events": events}).encode() + b"\n")
            assert json.loads(reader.readline())["ok"]
        for start in range(0, LARGE_EVENTS, 20):
            events = [
                {"stream": "big", "type": "Blob", "data": {"b": "x" * LARGE_BYTES}}
                for _ in range(start, start + 20)
            ]
            sock.sendall(json.dumps({"op": "append_batch", "events": events}).encode() + b"\n")
            assert json.loads(reader.readline())["ok"]


def main(argv: list[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="atlasd-bh-", dir="/tmp"))
    sock_path = root / "atlasd.sock"
    log = open(root / "daemon.log", "wb")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "atlasd.daemon", "--socket", str(sock_path)]
    proc = subprocess.Popen(
        [*command, "--data-dir", str(root / "data")],
        stdout=log,
        stderr=log,
        env={k: v for k, v in os.environ.items() if not k.startswith("ATLASD_")},
    )
    hostile: list[socket.socket] = []
    missed = False
    try:
        deadline = time.monotonic() + 30
        while not sock_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        _fill(sock_path)
        before = _status(proc.pid)
        print(f"  {'daemon RSS before (10k view rows, 20 MB of events)':<60} {before['VmRSS']} MB")

        reads = _connect(sock_path)
        reads.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reads.setblocking(False)
        for _ in range(READS):
            try:
                reads.send(b'{"op": "read", "limit": 10000}\n')
            except BlockingIOError:
                break
        hostile.append(reads)
        for _ in range(WATCHES):
            watch = _connect(sock_path)
            watch.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            watch.sendall(b'{"op": "watch", "view": "builds", "limit": 10000}\n')
            hostile.append(watch)
        spool = root / "data" / "spool"
        with open(spool / ".tmp-huge.part", "wb") as f:
            f.truncate(1 << 30)
        os.replace(spool / ".tmp-huge.part", spool / "huge.ndjson")
        # the view keeps changing: every watch wants to send a new 10,000-row answer
        for i in range(20):
            _request(
                sock_path,
                {
                    "op": "append",
                    "stream": f"build:b-{i}",
                    "type": "BuildCompleted",
                    "data": {"build_id": f"b-{i}", "status": "completed"},
                },
            )
            time.sleep(0.2)
        time.sleep(3)
        started = time.monotonic()
        pong = _request(sock_path, {"op": "ping"}, timeout=10)
        ping_s = time.monotonic() - started
        after = _status(proc.pid)
        peak_ok = after["VmHWM"] < RSS_LIMIT_MB
        ping_ok = bool(pong.get("ok")) and ping_s < PING_LIMIT_S
        label = "daemon RSS under the hostile client (now / peak)"
        mark = "ok" if peak_ok else "TARGET MISSED"
        print(f"  {label:<60} {after['VmRSS']} / {after['VmHWM']} MB  [{mark}]")
        mark = "ok" if ping_ok else "TARGET MISSED"
        print(f"  {'another client answered in':<60} {ping_s * 1000:.0f} ms  [{mark}]")
        rejected = (spool / "rejected" / "huge.ndjson.reason").exists()
        print(f"  {'sparse 1 GiB spool file rejected':<60} {rejected}")
        missed = not (peak_ok and ping_ok)
    finally:
        for sock in hostile:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
