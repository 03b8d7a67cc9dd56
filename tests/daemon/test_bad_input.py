"""Bad input: each gets the contract's error or a clean close, and nothing else changes."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.daemon.conftest import NO_SPOOL, event, toml_config
from tests.support.daemon import DaemonProcess, RawConnection, running_daemon


def _error_code(conn: RawConnection, line: bytes) -> str:
    conn.send(line)
    response = conn.recv()
    assert response["ok"] is False
    code: str = response["error"]["code"]
    return code


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"[1, 2, 3]\n",
        b'"a string"\n',
        b"42\n",
        b"{\n",
        b'{"op": "launch_rockets"}\n',
        b'{"id": 1}\n',
        b'{"op": "append", "stream": "s", "type": "T"}\n',
        b'{"op": "append", "stream": 5, "type": "T", "data": {}}\n',
        b'{"op": "append", "stream": "s", "type": "T", "data": []}\n',
        b'{"op": "append", "stream": "s", "type": "T", "data": {}, "expected_version": "1"}\n',
        b'{"op": "append", "stream": "s", "type": "T", "data": {}, "surprise": 1}\n',
        b'{"op": "append_batch", "events": {}}\n',
        b'{"op": "read", "from_seq": true}\n',
        b'{"op": "subscribe", "from_seq": "start"}\n',
        b'{"op": "query"}\n',
        b'{"op": "ping", "id": [1]}\n',
        b'{"op": "ping", "id": {"a": 1}}\n',
        b'{"op": "ping", "text": "\xff\xfe"}\n',
        b"\xff\xfe\xfd\n",
    ],
    ids=lambda line: line[:40].decode("utf-8", "replace"),
)
def test_malformed_requests_get_bad_request_and_append_nothing(
    daemon: DaemonProcess, line: bytes
) -> None:
    """Not JSON, not an object, unknown op, wrong types, missing fields, invalid UTF-8:
    bad_request, the connection stays usable, the log unchanged."""
    with daemon.connect() as conn:
        assert _error_code(conn, line) == "bad_request"
        assert conn.request("ping")["ok"]
        assert conn.request("status")["result"]["last_seq"] == 0


def test_a_bad_request_echoes_its_id_when_readable(daemon: DaemonProcess) -> None:
    """A refused request that carried an id gets it back."""
    with daemon.connect() as conn:
        conn.send(b'{"op": "append", "id": "x-1", "stream": "s"}\n')
        response = conn.recv()
    assert response["id"] == "x-1"
    assert response["error"]["code"] == "bad_request"


def test_blank_lines_are_ignored(daemon: DaemonProcess) -> None:
    """Empty lines between requests produce no response."""
    with daemon.connect() as conn:
        conn.send(b'\n\r\n   \n{"op": "ping", "id": 1}\n')
        assert conn.recv()["id"] == 1


def test_a_line_over_the_limit_gets_too_large_and_a_close(short_dir: Path) -> None:
    """A request line over max_line_bytes: too_large, then the connection is closed."""
    config = toml_config(short_dir / "c.toml", max_line_bytes=1024)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d, d.connect() as conn:
        conn.send(b'{"op": "ping", "id": 1}\n')
        big = json.dumps({"op": "append", **event(1), "data": {"x": "y" * 2000}})
        conn.send(big.encode() + b"\n")
        assert conn.recv()["id"] == 1
        response = conn.recv()
        assert response["error"]["code"] == "too_large"
        assert conn.at_eof()
        assert d.request("status")["result"]["last_seq"] == 0


def test_a_line_over_the_limit_is_refused_even_without_newline(short_dir: Path) -> None:
    """A client streaming bytes without a newline is cut off at the limit."""
    config = toml_config(short_dir / "c.toml", max_line_bytes=1024)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d, d.connect() as conn:
        conn.send(b"x" * 5000)
        assert conn.recv()["error"]["code"] == "too_large"
        assert conn.at_eof()


def _ping_line(length: int) -> bytes:
    """A ping line of exactly ``length`` bytes before its newline."""
    head = b'{"op": "ping", "id": "'
    return head + b"x" * (length - len(head) - 2) + b'"}\n'


def test_a_line_of_exactly_the_limit_is_served_and_one_byte_more_is_not(
    short_dir: Path,
) -> None:
    """A whole line arriving in one read is held to the same limit as any other line."""
    config = toml_config(short_dir / "c.toml", max_line_bytes=1024)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d:
        with d.connect() as conn:
            conn.send(_ping_line(1024))
            assert conn.recv()["ok"] is True
        with d.connect() as conn:
            conn.send(_ping_line(1025))
            assert conn.recv()["error"]["code"] == "too_large"
            assert conn.at_eof()


def test_a_line_ending_in_a_later_read_is_joined_to_its_start(daemon: DaemonProcess) -> None:
    """The read that ends a line carries only its tail: the start read before is kept."""
    with daemon.connect() as conn:
        conn.send(b'{"op": "append", "id": 7, ')
        time.sleep(0.2)  # the daemon reads the start on its own
        conn.send(b'"stream": "s", "type": "T", "data": {}}\n')
        response = conn.recv()
        assert response["id"] == 7
        assert response["result"]["seq"] == 1


def test_a_client_disconnecting_mid_line_changes_nothing(daemon: DaemonProcess) -> None:
    """Half a request then a hang-up appends nothing and leaves the daemon serving."""
    with daemon.connect() as conn:
        conn.send(b'{"op": "append", "stream": "s", "type": "T", "data": {"i"')
    with daemon.connect() as conn:
        assert conn.request("status")["result"]["last_seq"] == 0


def test_a_client_that_leaves_before_its_answers_does_not_harm_others(
    daemon: DaemonProcess,
) -> None:
    """Pipelined appends from a client that closes at once are handled; others are unaffected."""
    with daemon.connect() as conn:
        conn.send(b"".join(json.dumps({"op": "append", **event(i)}).encode() + b"\n"
                           for i in range(100)))  # fmt: skip
        conn.sock.shutdown(socket.SHUT_RDWR)
    with daemon.connect() as other:
        assert other.request("ping")["ok"]


def test_many_idle_connections_do_not_block_others(daemon: DaemonProcess) -> None:
    """Hundreds of idle connections stay open while another client is served."""
    idle = [daemon.connect() for _ in range(300)]
    try:
        with daemon.connect() as conn:
            assert conn.request("append", **event(1))["ok"]
            assert conn.request("status")["result"]["connections"] >= 301
    finally:
        for conn in idle:
            conn.close()


def test_connections_past_the_limit_get_unavailable(short_dir: Path) -> None:
    """Past max_connections a client is told unavailable and closed; earlier ones still work."""
    with running_daemon(args=[*NO_SPOOL, "--max-connections", "3"]) as d:
        # Closed connections (the readiness probe) count until the daemon sees them close.
        held = [d.connect()]
        while held[0].request("status")["result"]["connections"] > 1:
            time.sleep(0.01)
        held += [d.connect() for _ in range(2)]
        try:
            for conn in held:
                assert conn.request("ping")["ok"]
            with d.connect() as extra:
                response = extra.recv()
                assert response["error"]["code"] == "unavailable"
                assert "max_connections" in response["error"]["message"]
                assert extra.at_eof()
            assert held[0].request("ping")["ok"]
        finally:
            for conn in held:
                conn.close()
        # The daemon notices the closes asynchronously; a slot frees up soon after.
        assert _eventually_pings(d)


def _eventually_pings(d: DaemonProcess, attempts: int = 200) -> bool:
    for _ in range(attempts):
        try:
            if d.request("ping")["ok"]:
                return True
        except (OSError, EOFError):
            pass
        time.sleep(0.01)
    return False


_garbage = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["op", "id", "data", "stream", "x"]), inner, max_size=4
            )
        ),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode()),
)


@pytest.fixture(scope="module")
def fuzz_daemon() -> DaemonProcess:
    with running_daemon(args=NO_SPOOL) as d:
        yield d  # type: ignore[misc]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_garbage, min_size=1, max_size=5))
def test_fuzzed_garbage_never_crashes_nor_appends(
    fuzz_daemon: DaemonProcess, lines: list[bytes]
) -> None:
    """Random byte and JSON lines get bad_request (never internal), append nothing, and the
    daemon keeps serving."""
    payload = b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines)
    with fuzz_daemon.connect() as conn:
        conn.send(payload + b'{"op": "status", "id": "check"}\n')
        while True:
            response = conn.recv()
            if response.get("id") == "check" and response.get("ok"):
                break
            if not response["ok"]:
                assert response["error"]["code"] == "bad_request", response
        assert response["result"]["last_seq"] == 0
