"""Never loses a record: appends spool while the daemon is down and land once on start."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from atlasd.client import AsyncClient, Client
from atlasd.errors import DaemonUnreachable
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess

WAIT_S = 20.0


def _spooled(data_dir: Path) -> list[Path]:
    spool = data_dir / "spool"
    return sorted(spool.glob("*.ndjson")) if spool.exists() else []


def _wait_for_last_seq(client: Client, n: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while client.status().last_seq < n:
        assert time.monotonic() < deadline, f"spool not ingested within {WAIT_S}s"
        time.sleep(0.05)


def _wait_for_drained_spool(client: Client, data_dir: Path, n: int) -> None:
    """The daemon removes a spool file after appending it: wait for both."""
    deadline = time.monotonic() + WAIT_S
    while client.status().last_seq < n or _spooled(data_dir):
        assert time.monotonic() < deadline, f"spool not drained within {WAIT_S}s"
        time.sleep(0.05)


def test_appends_while_down_are_spooled_and_appended_once_on_start(
    daemon: DaemonProcess,
) -> None:
    """Spooled appends (one, a batch, and a retry of one) appear exactly once after start."""
    with Client(daemon.socket, data_dir=daemon.data_dir) as client:
        before = client.append("tool:f", "Before", {"i": 0})
        assert daemon.stop() == 0
        single = client.append("tool:f", "Offline", {"i": 1})
        batch = client.append_batch(
            [NewEvent(stream="tool:f", type="Offline", data={"i": i}) for i in (2, 3)]
        )
        # A caller retrying the same event id while still offline spools a second copy.
        retry = client.append("tool:f", "Offline", {"i": 1}, event_id=single.event_id)
        assert single.spooled
        assert retry.spooled
        assert all(o.spooled for o in batch)
        assert (single.seq, single.version) == (None, None)
        assert len(_spooled(daemon.data_dir)) == 3
        daemon.start()
        _wait_for_drained_spool(client, daemon.data_dir, 4)
        events = client.read(0).events
    counts = Counter(e.event_id for e in events)
    assert len(events) == 4
    assert set(counts.values()) == {1}
    assert set(counts) == {before.event_id, single.event_id, *(o.event_id for o in batch)}
    assert [e.data["i"] for e in events] == [0, 1, 2, 3]
    assert _spooled(daemon.data_dir) == []


async def test_the_async_client_spools_too(daemon: DaemonProcess) -> None:
    """AsyncClient falls back to the spool the same way, reporting the file."""
    assert daemon.stop() == 0
    async with AsyncClient(daemon.socket, data_dir=daemon.data_dir) as client:
        outcome = await client.append("tool:g", "Offline", {"x": 1})
    assert outcome.spooled
    assert outcome.spool_file is not None
    assert Path(outcome.spool_file) in _spooled(daemon.data_dir)
    daemon.start()
    with Client(daemon.socket) as client:
        _wait_for_last_seq(client, 1)
        assert client.read(0).events[0].event_id == outcome.event_id


def test_an_append_with_expected_version_is_never_spooled(daemon: DaemonProcess) -> None:
    """expected_version cannot be checked offline: DaemonUnreachable, nothing written."""
    assert daemon.stop() == 0
    with Client(daemon.socket, data_dir=daemon.data_dir) as client:
        with pytest.raises(DaemonUnreachable, match="expected_version"):
            client.append("tool:v", "A", {}, expected_version=0)
        with pytest.raises(DaemonUnreachable):
            Client(daemon.socket, data_dir=daemon.data_dir, spool=False).append("tool:v", "A", {})
    assert _spooled(daemon.data_dir) == []
    daemon.start()


def test_an_event_spooled_offline_keeps_the_moment_it_was_recorded(
    daemon: DaemonProcess,
) -> None:
    """occurred_at is set at call time, so a spooled event keeps it while recorded_at is later."""
    assert daemon.stop() == 0
    with Client(daemon.socket, data_dir=daemon.data_dir) as client:
        called_ms = time.time_ns() // 1_000_000
        outcome = client.append("build:b-off", "BuildStarted", {"build_id": "b-off"})
        assert outcome.spooled
        time.sleep(0.3)
        daemon.start()
        _wait_for_last_seq(client, 1)
        [event] = client.read(0).events
        [row] = client.query("builds")
    assert event.occurred_at is not None
    assert called_ms <= event.occurred_at < called_ms + 250
    assert event.recorded_at >= event.occurred_at + 250
    assert row["started_at"] == event.occurred_at
