"""A real daemon syncing to the Convex double: local and remote agree (docs/sync.md)."""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlasd.eventlog import VIEWS
from atlasd.eventlog.projections import VIEW_SPECS
from tests.support.convex_double import ConvexDouble

VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.json"))
KEYS = {view: VIEW_SPECS[view].key for view in VIEWS}
# Generous: the daemon starts, appends and syncs within a second or two here.
_WAIT = 60.0


class _Socket:
    """Newline-delimited JSON requests over the daemon's Unix socket."""

    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._file = self._sock.makefile("rb")

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        self._sock.sendall(json.dumps({"op": op, **params}).encode() + b"\n")
        answer: dict[str, Any] = json.loads(self._file.readline())
        assert answer.get("ok") is True, answer
        result: dict[str, Any] = answer["result"]
        return result

    def close(self) -> None:
        self._file.close()
        self._sock.close()


@pytest.fixture
def daemon(convex_double: ConvexDouble) -> Iterator[_Socket]:
    """``atlasd serve`` syncing to the double, and a connection to it."""
    tmp = tempfile.mkdtemp(dir="/tmp")
    path = f"{tmp}/atlasd.sock"
    env = {
        **os.environ,
        "ATLASD_INGEST_URL": convex_double.ingest_url,
        "ATLASD_INGEST_TOKEN": convex_double.token,
        "ATLASD_SOCKET": path,
        "ATLASD_DATA_DIR": f"{tmp}/data",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "atlasd", "serve"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + _WAIT
        while True:
            try:
                client = _Socket(path)
                client.call("ping")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert process.poll() is None, "atlasd serve exited"
                assert time.monotonic() < deadline, "atlasd serve never answered ping"
                time.sleep(0.05)
        yield client
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def _synced(client: _Socket) -> dict[str, Any]:
    deadline = time.monotonic() + _WAIT
    while True:
        status = client.call("status")
        if status["sync"]["acked_seq"] == status["last_seq"]:
            return status
        assert time.monotonic() < deadline, f"sync never caught up: {status['sync']}"
        client.call("sync_now")
        time.sleep(0.1)


@pytest.mark.slow
def test_every_vector_synced_by_a_daemon_gives_the_same_views_remotely(
    convex_double: ConvexDouble, daemon: _Socket
) -> None:
    """After a sync, each remote view equals the daemon's own, row for row."""
    appended = 0
    for path in VECTORS:
        vector = json.loads(path.read_text())
        if vector.get("legacy", False):
            continue  # the daemon refuses their events now; test_double posts them to the remote
        events = vector["events"]
        batch = [
            {
                "stream": e["stream"],
                "type": e["type"],
                "data": e["data"],
                "event_id": e["event_id"],
                **({"meta": e["meta"]} if "meta" in e else {}),
                **({"occurred_at": e["occurred_at"]} if "occurred_at" in e else {}),
            }
            for e in events
        ]
        appended += len(daemon.call("append_batch", events=batch)["results"])
    status = _synced(daemon)
    assert status["last_seq"] == appended
    origin = status["origin"]
    remote = convex_double.status(origin)
    assert (remote["high_water"], remote["events"]) == (appended, appended)
    local_events = daemon.call("read", limit=10_000)["events"]
    assert convex_double.events(origin) == local_events
    for view, keys in KEYS.items():
        local = daemon.call("query", view=view, limit=10_000)["rows"]
        rows = convex_double.view(view)
        assert rows, f"the vectors give {view} rows"
        assert sorted(rows, key=lambda r: [r[k] for k in keys]) == sorted(
            local, key=lambda r: [r[k] for k in keys]
        ), view
