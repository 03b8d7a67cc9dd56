"""Hostile clients on the socket: input the decoder cannot handle, integers out of range,
answers never read, idle and trickling connections; against a real daemon subprocess."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.conftest import NO_SPOOL, event, toml_config
from tests.support.daemon import DaemonProcess, RawConnection, running_daemon


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def idle_daemon(short_dir: Path) -> Iterator[DaemonProcess]:
    """A daemon that closes idle connections after 1 s and serves 4 at most."""
    config = toml_config(short_dir / "c.toml", idle_timeout_s=1.0, max_connections=4)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d:
        yield d


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (
            b'{"op": "append", "stream": "s", "type": "T", "data": {"a": ' + b"[" * 100_000 + b"\n",
            "nested too deeply",
        ),
        (
            b'{"op": "query", "view": "builds", "filter": '
            + b'{"a":' * 5_000
            + b"1"
            + b"}" * 5_001
            + b"\n",
            "nested too deeply",
        ),
        (b'{"op": "ping", "id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\n", "$.id"),
        (b'{"op": "ping", "zzz": ' + b"[" * 100_000 + b"\n", ""),
        (b'{"zzz": ' + b"[" * 100_000 + b"]" * 100_000 + b', "op": "ping"}\n', ""),
    ],
    ids=["data", "filter", "id", "unknown-field", "op-last"],
)
def test_deep_nesting_is_bad_request_and_the_connection_survives(
    daemon: DaemonProcess, line: bytes, says: str
) -> None:
    """Nesting too deep for the decoder stops at the interpreter's recursion guard, whether
    the value is read or skipped: a bad_request, the answers pipelined before it arrive,
    the connection goes on, no traceback."""
    with daemon.connect() as conn:
        conn.send(json.dumps({"op": "ping", "id": "before"}).encode() + b"\n" + line)
        assert conn.recv()["id"] == "before"
        answer = conn.recv()
        assert answer["ok"] is False
        assert answer["error"]["code"] == "bad_request"
        assert says in answer["error"]["message"]
        assert conn.request("ping")["ok"]
    assert "Traceback" not in daemon.log()
    assert daemon.request("status")["result"]["events"] == 0


def test_nesting_past_convex_limit_is_invalid_value_naming_the_path(
    daemon: DaemonProcess,
) -> None:
    """A readable value nested past Convex's limit is refused as a client refuses it
    offline: invalid_value with its path, the request's id kept, nothing appended."""
    line = (
        b'{"op": "append_batch", "id": 7, "events": [{"stream": "s", "type": "T", "data": {}},'
        b' {"stream": "s", "type": "T", "data": ' + b'{"a":' * 30 + b"1" + b"}" * 30 + b"}]}\n"
    )
    with daemon.connect() as conn:
        conn.send(line)
        answer = conn.recv()
        assert conn.request("ping")["ok"]
    assert answer["id"] == 7
    assert answer["error"]["code"] == "invalid_value"
    assert answer["error"]["message"] == (
        "events[1].data" + ".a" * 15 + ": nested deeper than 15 levels"
    )
    assert daemon.request("status")["result"]["events"] == 0


def test_nesting_within_the_limit_is_decoded(daemon: DaemonProcess) -> None:
    """A legal append_batch item 15 levels deep in its data is accepted."""
    data: dict[str, object] = {"leaf": 1}
    for _ in range(14):
        data = {"n": data}
    with daemon.connect() as conn:
        answer = conn.request("append_batch", events=[event(0) | {"data": data}])
        assert answer["ok"], answer


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "read", "from_seq": 2**63},
        {"op": "read", "from_seq": 2**64 + 5},
        {"op": "read", "limit": 2**70},
        {"op": "subscribe", "from_seq": 2**63},
        {"op": "query", "view": "streams", "limit": 2**63},
        {"op": "append", **event(1), "expected_version": 2**63},
        {"op": "append_batch", "events": [event(1) | {"expected_version": -(2**64)}]},
        {"op": "read", "from_seq": 10**400},
    ],
    ids=lambda r: f"{r['op']}-{sorted(set(r) - {'op', 'stream', 'type', 'data', 'events'})}",
)
def test_integers_out_of_range_are_bad_request(daemon: DaemonProcess, request_: dict) -> None:
    """Integers past 64 bits anywhere are a bad_request, never a crash or an internal."""
    with daemon.connect() as conn:
        conn.send(json.dumps(request_).encode() + b"\n")
        answer = conn.recv()
        assert answer["ok"] is False
        assert answer["error"]["code"] == "bad_request", answer
        assert conn.request("ping")["ok"]
    assert "Traceback" not in daemon.log()
    assert daemon.request("status")["result"]["events"] == 0


def test_a_trickling_partial_line_is_closed_after_the_idle_timeout(
    idle_daemon: DaemonProcess,
) -> None:
    """A client sending one byte of a line every 0.3 s (never a newline) is cut off after
    the idle timeout although bytes keep coming."""
    with idle_daemon.connect(timeout=10.0) as conn:
        started = time.monotonic()
        closed = False
        for byte in b'{"op": "ping", "padding": "' + b"x" * 100:
            try:
                conn.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            conn.sock.settimeout(0.3)
            try:
                if conn.sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed
        assert 1.0 <= time.monotonic() - started < 3.0
    assert "connection_idle_closed" in idle_daemon.log()


def test_holding_every_connection_idle_does_not_lock_others_out(
    idle_daemon: DaemonProcess,
) -> None:
    """max_connections idle sockets are closed after the timeout; a new client is then
    served, and a connection waiting on a subscription stays open."""
    time.sleep(0.5)  # the readiness probe's connection is released
    held = [RawConnection(idle_daemon.socket) for _ in range(3)]
    streaming = RawConnection(idle_daemon.socket)
    try:
        answer = streaming.request("subscribe", from_seq="end")
        assert answer["ok"], answer
        held[0].send(b'{"op": "pi')  # a partial line, then silence
        refused = RawConnection(idle_daemon.socket)
        answer = refused.request("ping")
        refused.close()
        assert answer["error"]["code"] == "unavailable"
        time.sleep(2.0)
        for conn in held:
            assert conn.at_eof()
        assert idle_daemon.request("ping")["ok"]
        with idle_daemon.connect() as other:
            assert other.request("append", **event(7))["ok"]
        assert streaming.recv()["event"]["data"] == {"i": 7}
    finally:
        for conn in [*held, streaming]:
            conn.close()


def test_a_read_page_stops_at_its_byte_budget_and_says_where_to_go_on(
    daemon: DaemonProcess,
) -> None:
    """Reading 10,000 large events answers a page under the byte budget whose last_seq is
    its last event; reading on from it returns the rest, none lost or repeated."""
    blob = "x" * 200_000
    with daemon.connect() as conn:
        for i in range(40):
            assert conn.request("append", **(event(i) | {"data": {"b": blob}}))["ok"]
        page = conn.request("read", limit=10_000)["result"]
        assert 0 < len(page["events"]) < 40
        assert sum(len(json.dumps(e)) for e in page["events"]) <= 4 * 1024 * 1024 + 1024
        assert page["last_seq"] == page["events"][-1]["seq"]
        seqs = [e["seq"] for e in page["events"]]
        cursor = page["last_seq"]
        while cursor < 40:
            page = conn.request("read", from_seq=cursor, limit=10_000)["result"]
            seqs += [e["seq"] for e in page["events"]]
            cursor = page["last_seq"]
        assert seqs == list(range(1, 41))
        filtered = conn.request("read", stream="s", limit=10_000)["result"]
        assert 0 < len(filtered["events"]) < 40
        assert filtered["last_seq"] == filtered["events"][-1]["seq"]


def test_pipelined_large_reads_never_read_keep_memory_bounded(daemon: DaemonProcess) -> None:
    """A client pipelining 200 large reads and reading none of the answers holds the daemon
    to a few budgets of memory, and another client is served meanwhile."""
    blob = "y" * 100_000
    with daemon.connect() as conn:
        for start in range(0, 200, 20):
            batch = [event(i) | {"data": {"b": blob}} for i in range(start, start + 20)]
            assert conn.request("append_batch", events=batch)["ok"]
    before = _rss_kib(daemon.pid)
    hostile = socket.socket(socket.AF_UNIX)
    hostile.connect(str(daemon.socket))
    hostile.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hostile.setblocking(False)
    line = b'{"op": "read", "limit": 10000}\n'
    try:
        for _ in range(200):
            try:
                hostile.send(line)
            except BlockingIOError:
                break
        time.sleep(3.0)
        started = time.monotonic()
        assert daemon.request("ping")["ok"]
        assert time.monotonic() - started < 2.0
        grown_mib = (_rss_kib(daemon.pid) - before) / 1024
        assert grown_mib < 60, f"RSS grew {grown_mib:.0f} MiB"
    finally:
        hostile.close()
