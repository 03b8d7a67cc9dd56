"""How the daemon takes input off its sockets: lines larger than one read, partial lines
from many connections at once (every connection's reads share one buffer)."""

from __future__ import annotations

import json

from atlasd.daemon.transport import READ_CHUNK
from tests.daemon.conftest import event
from tests.support.daemon import DaemonProcess


def test_a_line_several_reads_long_arrives_whole(daemon: DaemonProcess) -> None:
    """An append_batch line over three times one read's size is appended whole, in order."""
    pad = "p" * 2000
    events = [{**event(i), "data": {"i": i, "pad": pad}} for i in range(400)]
    line = json.dumps({"op": "append_batch", "id": "big", "events": events}).encode() + b"\n"
    assert len(line) > 3 * READ_CHUNK
    with daemon.connect() as conn:
        conn.send(line)
        response = conn.recv()
        assert response["ok"] is True, response
        assert response["id"] == "big"
        assert [r["seq"] for r in response["result"]["results"]] == list(range(1, 401))
        read = conn.request("read", from_seq=0, limit=400)
    assert [e["data"]["i"] for e in read["result"]["events"]] == list(range(400))


def test_partial_lines_from_many_connections_each_keep_their_own_bytes(
    daemon: DaemonProcess,
) -> None:
    """Lines sent a few bytes at a time on 8 connections, interleaved, are each read as
    their own connection sent them: nothing of one reaches another."""
    conns = [daemon.connect() for _ in range(8)]
    try:
        lines = [
            json.dumps({"op": "append", "id": n, **event(n, stream=f"conn-{n}")}).encode() + b"\n"
            for n in range(8)
        ]
        longest = max(len(line) for line in lines)
        for start in range(0, longest, 7):
            for conn, line in zip(conns, lines, strict=True):
                if start < len(line):
                    conn.send(line[start : start + 7])
        for n, conn in enumerate(conns):
            response = conn.recv()
            assert response["ok"] is True, response
            assert response["id"] == n
            read = conn.request("read", from_seq=response["result"]["seq"] - 1, limit=1)
            [stored] = read["result"]["events"]
            assert (stored["stream"], stored["data"]) == (f"conn-{n}", {"i": n})
    finally:
        for conn in conns:
            conn.close()
