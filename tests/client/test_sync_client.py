"""The blocking Client against a real daemon: the same calls, the same errors."""

from __future__ import annotations

import threading
import time

import pytest

from atlasd.client import Client
from atlasd.errors import BadRequest, DaemonUnreachable, VersionConflict
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess


def test_the_blocking_client_covers_every_op(daemon: DaemonProcess) -> None:
    """ping, append, append_batch, read, query, status, sync_now, subscribe and watch work."""
    with Client(daemon.socket, spool=False) as client:
        origin = client.ping().origin
        one = client.append("tool:s", "A", {"i": 0})
        batch = client.append_batch(
            [NewEvent(stream="tool:s", type="A", data={"i": i}) for i in (1, 2)]
        )
        assert [one.seq, *(o.seq for o in batch)] == [1, 2, 3]
        assert [e.data["i"] for e in client.read(1).events] == [1, 2]
        assert client.query("builds") == []
        assert client.status().origin == origin
        assert client.sync_now().triggered is False
        with client.subscribe(2) as events:
            assert next(events).seq == 3
            client.append("tool:s", "A", {"i": 3})
            assert next(events).data == {"i": 3}
        with client.watch("learnings") as rows:
            assert next(rows) == []


def test_errors_raise_their_class(daemon: DaemonProcess) -> None:
    """A version conflict raises VersionConflict carrying the current version."""
    with Client(daemon.socket, spool=False) as client:
        client.append("tool:v", "A", {}, expected_version=0)
        with pytest.raises(VersionConflict) as exc:
            client.append("tool:v", "A", {}, expected_version=0)
    assert exc.value.current_version == 1


def test_one_client_may_be_shared_between_threads(daemon: DaemonProcess) -> None:
    """Calls from several threads on one Client are serialized, none lost or mixed up."""
    results: list[int] = []
    with Client(daemon.socket, spool=False) as client:

        def work(t: int) -> None:
            for i in range(50):
                outcome = client.append(f"tool:t{t}", "T", {"i": i})
                assert outcome.seq is not None
                results.append(outcome.seq)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.status().last_seq == 200
    assert sorted(results) == list(range(1, 201))


def test_reads_without_a_daemon_raise_daemon_unreachable(daemon: DaemonProcess) -> None:
    """With nobody on the socket, calls other than appends raise DaemonUnreachable."""
    daemon.stop()
    with Client(daemon.socket) as client, pytest.raises(DaemonUnreachable):
        client.read()
    daemon.start()


def test_the_blocking_client_reconnects_after_the_daemon_restarts(daemon: DaemonProcess) -> None:
    """A socket the daemon dropped (restart) is replaced transparently on the next call."""
    with Client(daemon.socket, spool=False) as client:
        client.append("tool:r", "R", {"i": 1})
        assert daemon.stop() == 0
        daemon.start()
        outcome = client.append("tool:r", "R", {"i": 2})
    assert (outcome.seq, outcome.spooled) == (2, False)


def test_a_refused_subscription_raises_on_entry_and_closes_its_socket(
    daemon: DaemonProcess,
) -> None:
    """The daemon's refusal of a subscribe is raised by ``with`` as its class, and the
    stream's own socket is closed rather than left for the garbage collector."""
    with Client(daemon.socket, spool=False) as client:
        subscription = client.subscribe(-1)
        with pytest.raises(BadRequest), subscription:
            pass
        assert subscription._conn is None
        assert client.ping().origin


def test_a_subscription_closed_from_another_thread_ends_the_wait_for_its_next_event(
    daemon: DaemonProcess,
) -> None:
    """``close()`` from another thread returns at once and the thread waiting for the next
    event gets DaemonUnreachable, rather than both waiting for an event that never comes."""
    with Client(daemon.socket, spool=False) as client:
        subscription = client.subscribe("end")
        subscription.__enter__()
        ended: list[BaseException] = []

        def wait_for_next() -> None:
            try:
                next(subscription)
            except BaseException as exc:  # what ended the wait is the result
                ended.append(exc)

        reader = threading.Thread(target=wait_for_next, daemon=True)
        reader.start()
        time.sleep(0.3)  # the reader is blocked in its read
        closer = threading.Thread(target=subscription.close, daemon=True)
        closer.start()
        closer.join(5)
        reader.join(5)
        assert not closer.is_alive(), "close() waited for an event"
        assert not reader.is_alive(), "the reader still waits"
        assert len(ended) == 1
        assert isinstance(ended[0], DaemonUnreachable), repr(ended[0])
