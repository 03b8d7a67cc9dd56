"""Requests arriving one whole line per read (dispatched without the line buffer) mixed
with split and joined lines: limits, odd lines, order, read-your-writes, the pipeline's
depth, streams, idle timeout, connections sharing the read buffer; against a real
daemon subprocess."""

from __future__ import annotations

import json
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import NO_SPOOL, event, toml_config
from tests.support.daemon import DaemonProcess, RawConnection, running_daemon, start_daemon


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _line(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"


def _send_one_per_read(conn: RawConnection, lines: list[bytes], pause_s: float = 0.002) -> None:
    """Each line in its own send, a pause between: the daemon reads them one at a time."""
    for line in lines:
        conn.send(line)
        time.sleep(pause_s)


@pytest.fixture
def small_line_daemon(short_dir: Path) -> Iterator[DaemonProcess]:
    """A daemon taking lines of 1024 bytes at most."""
    config = toml_config(short_dir / "c.toml", max_line_bytes=1024)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d:
        yield d


def _append_of(length: int, request_id: int, ending: bytes) -> bytes:
    """An append line of exactly ``length`` bytes before its newline (``ending`` included)."""
    head = json.dumps({"op": "append", "id": request_id, **event(request_id)}).encode()[:-1]
    pad = length - len(head) - len(b', "meta": {"p": ""}}') - len(ending) + 1
    return head + b', "meta": {"p": "' + b"x" * pad + b'"}}' + ending


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_lines_around_the_limit_in_one_read_are_held_to_it(
    small_line_daemon: DaemonProcess, ending: bytes
) -> None:
    """Appends of limit-1, limit and limit+1 bytes (a carriage return counts), each the
    whole of one read: the first two are stored, the third is too_large and closes."""
    for length, stored in ((1023, True), (1024, True), (1025, False)):
        line = _append_of(length, length, ending)
        assert len(line.split(b"\n")[0]) == length
        with small_line_daemon.connect() as conn:
            conn.send(line)
            answer = conn.recv()
            if stored:
                assert answer["ok"] is True, answer
                assert answer["id"] == length
            else:
                assert answer["error"]["code"] == "too_large"
                assert conn.at_eof()
    assert small_line_daemon.request("status")["result"]["events"] == 2


def test_odd_lines_each_alone_in_a_read_are_answered_in_order(daemon: DaemonProcess) -> None:
    """A blank line, a CRLF line, bad JSON, bad UTF-8 and deep nesting, each the whole of
    one read between appends: each bad one is one bad_request in its place, the blank one
    none, the connection goes on and every append lands once."""
    lines = [
        _line({"op": "append", "id": 1, **event(1)}),
        b"\n",
        b"\r\n",
        json.dumps({"op": "append", "id": 2, **event(2)}).encode() + b"\r\n",
        b'{"op": "append", "id": 3, \n',
        b'{"op": "ping", "id": "\xff\xfe"}\n',
        b'{"op": "append", "id": 4, "stream": "s", "type": "T", "data": {"a": '
        + b"[" * 100_000
        + b"\n",
        _line({"op": "read", "id": 5}),
    ]
    with daemon.connect() as conn:
        _send_one_per_read(conn, lines, pause_s=0.05)
        first, second = conn.recv(), conn.recv()
        assert (first["id"], first["result"]["seq"]) == (1, 1)
        assert (second["id"], second["result"]["seq"]) == (2, 2)
        bad = [conn.recv() for _ in range(3)]
        assert [b["error"]["code"] for b in bad] == ["bad_request"] * 3
        assert "UTF-8" in bad[1]["error"]["message"]
        assert "nested too deeply" in bad[2]["error"]["message"]
        read = conn.recv()
        assert read["id"] == 5
        assert [e["seq"] for e in read["result"]["events"]] == [1, 2]
        assert conn.request("ping", id="after")["id"] == "after"
    assert "Traceback" not in daemon.log()


def _chunks(data: bytes, rng: random.Random) -> Iterator[bytes]:
    """``data`` cut at random places: most chunks a whole line, some halves, some several."""
    lines = data.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        roll = rng.random()
        if roll < 0.6:
            yield lines[i]
            i += 1
        elif roll < 0.8 and len(lines[i]) > 1:
            cut = rng.randrange(1, len(lines[i]))
            yield lines[i][:cut]
            yield lines[i][cut:]
            i += 1
        else:
            n = rng.randrange(2, 6)
            yield b"".join(lines[i : i + n])
            i += n


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pipeline_cut_anywhere_is_answered_in_order_and_reads_see_earlier_appends(
    daemon: DaemonProcess, seed: int
) -> None:
    """Appends (some retried by id), batches, reads, pings, blank and unreadable lines sent
    in chunks cut at random places: one answer per request in send order, a retried id is
    a duplicate of its first position, and each read sees every append sent before it."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    expected: list[tuple[Any, str, int]] = []  # id, kind, events stored before the answer
    stored = 0
    ids: list[str] = []
    for n in range(400):
        roll = rng.random()
        if roll < 0.45:
            if ids and rng.random() < 0.2:
                event_id = rng.choice(ids)
                kind = "duplicate"
            else:
                event_id = f"0190f00d-0000-7000-8000-{len(ids) + 1 + 1000 * seed:012d}"
                ids.append(event_id)
                stored += 1
                kind = "append"
            body = {"op": "append", "id": n, **event(0), "event_id": event_id}
            lines.append(_line(body))
        elif roll < 0.55:
            lines.append(_line({"op": "append_batch", "id": n, "events": [event(n), event(n)]}))
            stored += 2
            kind = "batch"
        elif roll < 0.75:
            lines.append(_line({"op": "read", "id": n, "limit": 10_000}))
            kind = "read"
        elif roll < 0.85:
            lines.append(_line({"op": "ping", "id": n}))
            kind = "ping"
        elif roll < 0.92:
            lines.append(b"\n" if rng.random() < 0.5 else b"  \r\n")
            continue
        else:
            lines.append(b'{"op": "ping", "id": ' + str(n).encode() + b", oops}\n")
            kind = "bad"
        expected.append((n, kind, stored))
    first_seq: dict[str, int] = {}
    with daemon.connect() as conn:
        for chunk in _chunks(b"".join(lines), rng):
            conn.send(chunk)
            if rng.random() < 0.5:
                time.sleep(0.001)
        for n, kind, stored_before in expected:
            answer = conn.recv()
            if kind == "bad":
                assert answer["error"]["code"] == "bad_request"
                continue
            assert answer["id"] == n, (answer, n)
            assert answer["ok"] is True, answer
            result = answer["result"]
            if kind == "read":
                assert len(result["events"]) == stored_before
            elif kind in ("append", "duplicate"):
                assert result["duplicate"] is (kind == "duplicate")
                if kind == "append":
                    first_seq[result["event_id"]] = result["seq"]
                else:
                    assert result["seq"] == first_seq[result["event_id"]]
    assert daemon.request("status")["result"]["events"] == stored


def test_a_pipeline_past_the_depth_sent_one_line_per_read_is_answered_in_order(
    daemon: DaemonProcess,
) -> None:
    """600 reads and appends, each in its own send, from a client that reads nothing until
    all are sent (the answers pass the output budget, so requests queue up past the
    pipeline's depth and reading pauses): the daemon's memory stays within a few output
    budgets, then every answer arrives, in order, each read seeing exactly the appends
    sent before it."""
    blob = "z" * 40_000
    with daemon.connect() as conn:
        batch = [event(i) | {"data": {"b": blob}} for i in range(20)]
        assert conn.request("append_batch", events=batch)["ok"]
    before = _rss_kib(daemon.pid)
    sock = socket.socket(socket.AF_UNIX)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(daemon.socket))
    sock.settimeout(60)
    lines = [
        _line({"op": "read", "id": i, "limit": 10_000})
        if i % 2 == 0
        else _line({"op": "append", "id": i, **event(i)})
        for i in range(600)
    ]

    def send_all() -> None:
        for line in lines:
            sock.sendall(line)
            time.sleep(0.0005)

    sender = threading.Thread(target=send_all)
    sender.start()
    try:
        time.sleep(2.0)  # the daemon fills its budget and its queue, then stops reading
        grown_mib = (_rss_kib(daemon.pid) - before) / 1024
        assert grown_mib < 60, f"RSS grew {grown_mib:.0f} MiB"
        reader = sock.makefile("rb")
        for i in range(600):
            answer = json.loads(reader.readline())
            assert answer["id"] == i
            if i % 2 == 0:
                assert len(answer["result"]["events"]) == 20 + i // 2
            else:
                assert answer["result"]["seq"] == 20 + (i + 1) // 2
        sender.join(timeout=30)
        assert not sender.is_alive()
    finally:
        sock.close()
        sender.join(timeout=30)


def test_a_subscribe_after_appends_read_one_per_read_follows_their_answers(
    daemon: DaemonProcess,
) -> None:
    """Appends each in its own read, then a subscribe in its own read: the appends'
    answers come first, then the subscription with every one of them."""
    with daemon.connect() as conn:
        _send_one_per_read(conn, [_line({"op": "append", "id": i, **event(i)}) for i in range(50)])
        conn.send(_line({"op": "subscribe", "id": "sub", "from_seq": 0}))
        assert [conn.recv()["result"]["seq"] for _ in range(50)] == list(range(1, 51))
        assert conn.recv() == {"id": "sub", "ok": True, "result": {"subscribed": True}}
        assert [conn.recv()["event"]["seq"] for _ in range(50)] == list(range(1, 51))


def test_two_connections_interleaving_reads_never_see_each_others_bytes(
    daemon: DaemonProcess,
) -> None:
    """Two clients sending appends one line per read at the same time, one of them with
    a line left half sent meanwhile: each gets its own answers in order and each stream
    holds exactly its client's events in order."""
    with daemon.connect() as half:
        half.send(b'{"op": "append", "id": "half", "stream": "h", ')

        def client(name: str, out: list[Any]) -> None:
            with daemon.connect() as conn:
                _send_one_per_read(
                    conn,
                    [
                        _line({"op": "append", "id": f"{name}{i}", **event(i, name)})
                        for i in range(300)
                    ],
                    pause_s=0.0005,
                )
                out.extend(conn.recv()["id"] for _ in range(300))

        answers: dict[str, list[Any]] = {"a": [], "b": []}
        threads = [threading.Thread(target=client, args=(n, answers[n])) for n in answers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        half.send(b'"type": "T", "data": {"k": "half"}}\n')
        assert half.recv()["id"] == "half"
    for name in answers:
        assert answers[name] == [f"{name}{i}" for i in range(300)]
        events = daemon.request("read", stream=name, limit=10_000)["result"]["events"]
        assert [e["data"]["i"] for e in events] == list(range(300))
    (only,) = daemon.request("read", stream="h")["result"]["events"]
    assert only["data"] == {"k": "half"}


def test_a_connection_busy_with_whole_line_reads_is_not_closed_as_idle(
    short_dir: Path,
) -> None:
    """Pings each the whole of a read every 0.3 s keep a connection open past the idle
    timeout; once they stop it is closed after about that timeout."""
    config = toml_config(short_dir / "c.toml", idle_timeout_s=1.0)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d, d.connect() as conn:
        for i in range(10):
            assert conn.request("ping", id=i)["id"] == i
            time.sleep(0.3)
        started = time.monotonic()
        assert conn.at_eof()
        assert 0.5 < time.monotonic() - started < 4.0


def test_appends_cut_off_by_a_close_and_retried_are_stored_once(
    daemon: DaemonProcess,
) -> None:
    """A client sends 200 appends with ids and closes without reading any answer; sent
    again on a new connection every one is answered and the log holds each once."""
    lines = [
        _line(
            {"op": "append", "id": i, **event(i), "event_id": f"0190f00d-0000-7000-8000-{i:012d}"}
        )
        for i in range(1, 201)
    ]
    with daemon.connect() as conn:
        _send_one_per_read(conn, lines[:100], pause_s=0.0002)
        conn.send(b"".join(lines[100:]))
    with daemon.connect() as conn:
        conn.send(b"".join(lines))
        answers = [conn.recv() for _ in lines]
    assert [a["id"] for a in answers] == list(range(1, 201))
    seqs = [a["result"]["seq"] for a in answers]
    assert sorted(seqs) == list(range(1, 201))
    assert daemon.request("status")["result"]["events"] == 200


def test_lines_held_back_at_the_depth_and_read_on_an_answer_leave_no_traceback(
    daemon: DaemonProcess,
) -> None:
    """An append, then enough unreadable lines to fill the pipeline and more held back:
    the append's answer frees room, the held lines are read from inside that answer, and
    every line is answered in order with no failure logged."""
    depth = 256
    bad = [b'{"op": "ping", "id": %d, oops}\n' % i for i in range(1, depth + 20)]
    with daemon.connect() as conn:
        conn.send(_line({"op": "append", "id": 0, **event(0)}) + b"".join(bad))
        assert conn.recv()["result"]["seq"] == 1
        answers = [conn.recv() for _ in bad]
        assert [a["error"]["code"] for a in answers] == ["bad_request"] * len(bad)
        assert conn.request("ping", id="after")["id"] == "after"
    log = daemon.log()
    assert "append_callback_failed" not in log
    assert "Traceback" not in log


def test_a_half_close_after_whole_line_appends_still_gets_every_answer(
    daemon: DaemonProcess,
) -> None:
    """Appends each in its own read, then the client ends its sending side: each append
    is answered before the daemon closes."""
    with daemon.connect() as conn:
        _send_one_per_read(conn, [_line({"op": "append", "id": i, **event(i)}) for i in range(30)])
        conn.sock.shutdown(socket.SHUT_WR)
        assert [conn.recv()["id"] for _ in range(30)] == list(range(30))
        assert conn.at_eof()
    assert daemon.request("status")["result"]["events"] == 30


def test_appends_in_flight_at_shutdown_are_stored_exactly_when_acknowledged(
    short_dir: Path,
) -> None:
    """SIGTERM while a client sends appends one line per read: every append answered ok
    is in the log after a restart, and nothing answered otherwise is."""
    daemon = start_daemon(short_dir, args=list(NO_SPOOL))
    acked: set[str] = set()
    try:
        with daemon.connect() as conn:

            def send_all() -> None:
                for i in range(400):
                    event_id = f"0190f00d-0000-7000-8000-{i:012d}"
                    try:
                        conn.send(
                            _line(
                                {"op": "append", "id": event_id, **event(i)}
                                | {"event_id": event_id}
                            )
                        )
                    except OSError:
                        return
                    time.sleep(0.001)

            sender = threading.Thread(target=send_all)
            sender.start()
            time.sleep(0.15)
            daemon.send_signal(signal.SIGTERM)
            while True:
                try:
                    answer = conn.recv()
                except (EOFError, OSError):
                    break
                if answer["ok"]:
                    acked.add(answer["result"]["event_id"])
                else:
                    assert answer["error"]["code"] == "unavailable", answer
            sender.join(timeout=30)
        assert daemon.proc is not None
        assert daemon.proc.wait(30) == 0
    finally:
        daemon.stop()
    assert 0 < len(acked) < 400, "the premise: the stop came while appends were arriving"
    daemon.start()
    try:
        stored = daemon.request("read", limit=10_000)["result"]["events"]
    finally:
        daemon.stop()
    assert {e["event_id"] for e in stored} == acked
