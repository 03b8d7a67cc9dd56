"""Appends are what they claim: refused offline as online, connection-level refusals
as their own error classes, an unavailable daemon's events spooled, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlasd import wire
from atlasd.client import AsyncClient, Client
from atlasd.client.calls import connection_refusal
from atlasd.errors import DaemonUnreachable, Forbidden, InvalidValue, TooLarge, Unavailable
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess, RawConnection, clean_env, running_daemon

ATLASD = str(Path(sys.executable).parent / "atlasd")
WAIT_S = 20.0

#: Events the daemon refuses, given as emit arguments.
REFUSED = [
    ("tool:x", "Ran", '{"$ref": 1}'),
    ("tool:x", "Ran", '{"n": 9007199254740993}'),
    ("tool:x", "Ran", '{"deep": ' + "[" * 20 + "]" * 20 + "}"),
    ("tool:x", "no spaces allowed", "{}"),
    ("", "Ran", "{}"),
]


def emit(*args: str, socket: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATLASD, "emit", *args, "--socket", str(socket), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


@pytest.mark.parametrize(("stream", "type_", "data"), REFUSED)
def test_emit_refuses_offline_exactly_what_the_daemon_refuses_online(
    daemon: DaemonProcess, tmp_path: Path, stream: str, type_: str, data: str
) -> None:
    """Same exit code (1) and the same message, whether the daemon runs or not; nothing spooled."""
    online = emit(stream, type_, data, socket=daemon.socket, data_dir=daemon.data_dir)
    offline_dir = tmp_path / "offline"
    offline = emit(stream, type_, data, socket=tmp_path / "none.sock", data_dir=offline_dir)
    assert online.returncode == 1, online.stderr
    assert offline.returncode == 1, offline.stderr
    assert offline.stderr == online.stderr
    assert "invalid_value" in online.stderr
    assert not list(offline_dir.glob("spool/*.ndjson"))


def test_the_client_refuses_a_bad_batch_offline_naming_the_item(tmp_path: Path) -> None:
    """append_batch offline names the item as the daemon does (events[1].data...)."""
    batch = [
        NewEvent(stream="s", type="T", data={}),
        NewEvent(stream="s", type="T", data={"$x": 1}),
    ]
    with (
        Client(tmp_path / "none.sock", data_dir=tmp_path) as client,
        pytest.raises(InvalidValue, match=r"^events\[1\]\.data\.\$x"),
    ):
        client.append_batch(batch)
    assert not list(tmp_path.glob("spool/*.ndjson"))


def test_a_request_over_the_line_limit_raises_too_large(daemon: DaemonProcess) -> None:
    """The daemon's id-null too_large answer becomes TooLarge, not an out-of-order error."""
    with Client(daemon.socket, data_dir=daemon.data_dir) as client:
        with pytest.raises(TooLarge, match="over"):
            client.append("tool:x", "Big", {"blob": "x" * (3 << 20)})
        assert client.ping().origin  # a new connection works


async def test_the_async_client_raises_too_large_too(daemon: DaemonProcess) -> None:
    """Same for AsyncClient."""
    async with AsyncClient(daemon.socket, data_dir=daemon.data_dir) as client:
        with pytest.raises(TooLarge):
            await client.append("tool:x", "Big", {"blob": "x" * (3 << 20)})


@pytest.mark.parametrize(
    ("code", "cls"),
    [("too_large", TooLarge), ("unavailable", Unavailable), ("forbidden", Forbidden)],
)
def test_every_id_null_refusal_maps_to_its_class(code: str, cls: type[Exception]) -> None:
    """An answer without id and with an error is that error's class; others are not refusals."""
    refused = wire.decode_response(
        f'{{"id": null, "ok": false, "error": {{"code": "{code}", "message": "m"}}}}'.encode()
    )
    assert type(connection_refusal(refused)) is cls
    fine = wire.decode_response(b'{"id": null, "ok": true, "result": {}}')
    assert connection_refusal(fine) is None


def test_at_the_connection_limit_appends_are_spooled_and_say_why() -> None:
    """A daemon at max_connections answers unavailable: the client and emit spool the event,
    say so, and the daemon appends it once a slot frees up (here: its spool watcher)."""
    with running_daemon(args=["--max-connections", "2"]) as d:
        held = _hold_all_slots(d, 2)
        try:
            with Client(d.socket, data_dir=d.data_dir) as client:
                outcome = client.append("tool:x", "Busy", {"n": 1})
            assert outcome.spooled
            assert outcome.spool_reason is not None
            assert "max_connections" in outcome.spool_reason
            out = emit("tool:x", "Busy", '{"n": 2}', socket=d.socket, data_dir=d.data_dir)
            assert out.returncode == 0, out.stderr
            assert "unavailable" in out.stdout
            assert "spooled event" in out.stdout
        finally:
            for conn in held:
                conn.close()
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                events = d.request("read")["result"]["events"]
            except (OSError, KeyError):
                events = []
            if len(events) == 2:
                break
            assert time.monotonic() < deadline, "spooled events were not appended"
            time.sleep(0.1)
        assert sorted(e["data"]["n"] for e in events) == [1, 2]


async def test_the_async_client_spools_at_the_connection_limit_too() -> None:
    """AsyncClient: unavailable at the connection limit is spooled with the reason."""
    with running_daemon(args=["--max-connections", "2"]) as d:
        held = _hold_all_slots(d, 2)
        try:
            async with AsyncClient(d.socket, data_dir=d.data_dir) as client:
                outcome = await client.append("tool:x", "Busy", {"n": 3})
        finally:
            for conn in held:
                conn.close()
    assert outcome.spooled
    assert outcome.spool_reason is not None
    assert "max_connections" in outcome.spool_reason


def _hold_all_slots(d: DaemonProcess, slots: int) -> list[RawConnection]:
    """Connections filling every slot (the readiness probe's closes are noticed late)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        held = [d.connect() for _ in range(slots)]
        if all(conn.request("ping").get("ok") for conn in held):
            return held
        for conn in held:
            conn.close()
        assert time.monotonic() < deadline, "slots never freed"
        time.sleep(0.05)


def test_an_unwritable_spool_is_one_line_naming_the_path(tmp_path: Path) -> None:
    """No daemon and a spool that cannot be created: exit 3, one line, the path, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = emit("tool:x", "Ran", "{}", socket=tmp_path / "none.sock", data_dir=blocker / "data")
    assert out.returncode == 3
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert str(blocker / "data" / "spool") in out.stderr
    assert "make it writable" in out.stderr


def test_client_spool_failure_is_an_atlasd_error(tmp_path: Path) -> None:
    """The library raises DaemonUnreachable (not OSError) when it cannot spool."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with (
        Client(tmp_path / "none.sock", data_dir=blocker) as client,
        pytest.raises(DaemonUnreachable, match="cannot be written"),
    ):
        client.append("tool:x", "Ran", {})


def test_export_to_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    """export -o into a directory that does not exist: exit 2 naming it, before connecting."""
    out = subprocess.run(
        [ATLASD, "export", "-o", str(tmp_path / "no" / "such" / "x.ndjson")],
        capture_output=True,
        text=True,
        env=clean_env({"ATLASD_SOCKET": str(tmp_path / "none.sock")}),
        timeout=60,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"directory {tmp_path / 'no' / 'such'} does not exist" in out.stderr


def test_an_unreadable_config_is_one_line(tmp_path: Path) -> None:
    """serve --config on a missing file: exit 2 and one line naming it."""
    out = subprocess.run(
        [ATLASD, "serve", "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert out.returncode == 2
    missing = tmp_path / "missing.toml"
    assert out.stderr.strip() == (
        f"atlasd serve: cannot read config file {missing}: No such file or directory"
    )
