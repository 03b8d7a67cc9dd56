"""AsyncClient against a real daemon: every op, typed results, errors, pipelining."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from atlasd.client import AppendOutcome, AsyncClient, Pong, StatusReport, SyncNowResult
from atlasd.daemon.handlers import SYNC_DISABLED_REASON
from atlasd.errors import (
    BadRequest,
    EventIdConflict,
    InvalidValue,
    VersionConflict,
)
from atlasd.events import Event, NewEvent
from atlasd.events.ids import new_event_id
from tests.support.daemon import DaemonProcess


@pytest.fixture
async def client(daemon: DaemonProcess) -> AsyncClient:
    async with AsyncClient(daemon.socket, data_dir=daemon.data_dir, spool=False) as c:
        yield c


async def test_ping_answers_with_version_and_origin(client: AsyncClient) -> None:
    """ping returns a typed Pong carrying the daemon's origin."""
    pong = await client.ping()
    assert isinstance(pong, Pong)
    status = await client.status()
    assert pong.origin == status.origin


async def test_append_returns_seq_and_version_and_gives_an_event_id(client: AsyncClient) -> None:
    """Appends get consecutive seqs and stream versions; the client made a UUIDv7 id."""
    first = await client.append("tool:a", "Did", {"n": 1})
    second = await client.append("tool:a", "Did", {"n": 2})
    assert (first.seq, first.version, second.seq, second.version) == (1, 1, 2, 2)
    assert not first.spooled
    assert not first.duplicate
    assert first.event_id[14] == "7"  # UUID version nibble


async def test_an_append_retried_with_its_event_id_is_a_duplicate(client: AsyncClient) -> None:
    """The same event id and content again answers the stored seq with duplicate=True."""
    event_id = new_event_id()
    first = await client.append("tool:a", "Did", {"n": 1}, event_id=event_id)
    again = await client.append("tool:a", "Did", {"n": 1}, event_id=event_id)
    assert again == AppendOutcome(
        event_id=event_id, seq=first.seq, version=first.version, duplicate=True
    )


async def test_daemon_errors_raise_their_exception_with_the_contract_code(
    client: AsyncClient,
) -> None:
    """Conflicts and invalid values come back as atlasd.errors exceptions with codes."""
    event_id = new_event_id()
    await client.append("tool:a", "Did", {"n": 1}, event_id=event_id)
    with pytest.raises(EventIdConflict) as conflict:
        await client.append("tool:a", "Did", {"n": 2}, event_id=event_id)
    assert conflict.value.code == "event_id_conflict"
    with pytest.raises(VersionConflict) as version:
        await client.append("tool:a", "Did", {}, expected_version=5)
    assert (version.value.code, version.value.current_version) == ("version_conflict", 1)
    with pytest.raises(InvalidValue, match=r"\$ref"):
        await client.append("tool:a", "Did", {"$ref": 1})
    with pytest.raises(BadRequest):
        await client.query("no-such-view")
    assert (await client.status()).last_seq == 1


async def test_append_batch_is_all_or_nothing(client: AsyncClient) -> None:
    """A batch with one invalid event appends none of it; a good batch appends all."""
    bad = [
        NewEvent(stream="tool:b", type="Ok", data={}),
        NewEvent(stream="tool:b", type="bad type", data={}),
    ]
    with pytest.raises(InvalidValue):
        await client.append_batch(bad)
    assert (await client.status()).last_seq == 0
    good = await client.append_batch(
        [NewEvent(stream="tool:b", type="Ok", data={"i": i}) for i in range(3)]
    )
    assert [o.seq for o in good] == [1, 2, 3]


async def test_read_filters_by_stream_and_type_and_pages_with_last_seq(
    client: AsyncClient,
) -> None:
    """read returns typed events after from_seq, filtered, with a cursor to go on."""
    for i in range(4):
        await client.append(f"tool:{i % 2}", "Even" if i % 2 == 0 else "Odd", {"i": i})
    page = await client.read(0, stream="tool:0")
    assert [e.data["i"] for e in page.events] == [0, 2]
    assert all(isinstance(e, Event) for e in page.events)
    odd = await client.read(0, types=["Odd"])
    assert [e.data["i"] for e in odd.events] == [1, 3]
    first = await client.read(0, limit=2)
    rest = await client.read(first.last_seq)
    assert [e.seq for e in first.events + rest.events] == [1, 2, 3, 4]


async def test_subscribe_catches_up_then_follows_live(client: AsyncClient) -> None:
    """A subscription yields stored events after from_seq, then new ones as appended."""
    await client.append("tool:s", "A", {"i": 0})
    await client.append("tool:s", "A", {"i": 1})
    async with client.subscribe(1) as events:
        first = await anext(events)
        await client.append("tool:s", "A", {"i": 2})
        second = await anext(events)
    assert [first.data["i"], second.data["i"]] == [1, 2]
    assert [first.seq, second.seq] == [2, 3]


async def test_watch_sends_the_rows_now_and_after_each_change(client: AsyncClient) -> None:
    """A watched query answers at once and again when an event changes its answer."""
    async with client.watch("patterns") as updates:
        assert await anext(updates) == []
        await client.append(
            "pattern:p1",
            "PatternStored",
            {
                "pattern_id": "p1",
                "name": "n",
                "description": "d",
                "code": "c",
                "language": "py",
                "tags": ["x"],
            },
        )
        with anyio.fail_after(20):
            rows = await anext(updates)
    assert [r["pattern_id"] for r in rows] == ["p1"]


async def test_status_and_sync_now_answer_with_contract_fields(client: AsyncClient) -> None:
    """status is typed (sync disabled offline); sync_now says what it did."""
    status = await client.status()
    assert isinstance(status, StatusReport)
    assert status.sync.state == "disabled"
    assert status.events == status.last_seq >= 0
    assert status.db_bytes > 0
    result = await client.sync_now()
    assert isinstance(result, SyncNowResult)
    assert (result.triggered, result.reason) == (False, SYNC_DISABLED_REASON)


async def test_concurrent_calls_are_pipelined_on_one_connection(client: AsyncClient) -> None:
    """Hundreds of concurrent calls share one connection and each gets its own answer."""
    outcomes: dict[int, AppendOutcome] = {}
    pings: list[Pong] = []

    async def append(i: int) -> None:
        outcomes[i] = await client.append(f"tool:p{i % 7}", "P", {"i": i})

    async def ping() -> None:
        pings.append(await client.ping())

    await client.ping()
    connection = client._conn
    async with anyio.create_task_group() as tg:
        for i in range(300):
            tg.start_soon(append, i)
            if i % 30 == 0:
                tg.start_soon(ping)
    assert client._conn is connection
    assert sorted(o.seq or 0 for o in outcomes.values()) == list(range(1, 301))
    assert len(pings) == 10
    page = await client.read(0, limit=1000)
    by_id = {e.event_id: e for e in page.events}
    for i, outcome in outcomes.items():
        assert by_id[outcome.event_id].data == {"i": i}
        assert by_id[outcome.event_id].seq == outcome.seq


async def test_the_client_reconnects_after_the_daemon_restarts(daemon: DaemonProcess) -> None:
    """A connection the daemon dropped (restart) is replaced transparently on the next call."""
    async with AsyncClient(daemon.socket, spool=False) as client:
        await client.append("tool:r", "R", {"i": 1})
        assert daemon.stop() == 0
        daemon.start()
        outcome = await client.append("tool:r", "R", {"i": 2})
    assert (outcome.seq, outcome.spooled) == (2, False)


async def test_cancelled_callers_do_not_stall_or_break_the_others(client: AsyncClient) -> None:
    """Cancelling some pipelined calls leaves the rest answered and the connection usable."""
    await client.ping()
    connection = client._conn
    done: dict[int, AppendOutcome] = {}
    scopes = [anyio.CancelScope() for _ in range(200)]

    async def call(i: int) -> None:
        with scopes[i]:
            done[i] = await client.append("tool:c", "C", {"i": i})

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(call, i)
        await anyio.lowlevel.checkpoint()
        for scope in scopes[::3]:
            scope.cancel()
    assert {i for i in range(200) if i % 3} <= set(done)
    after = await client.append("tool:c", "After", {})
    assert client._conn is connection
    page = await client.read(0, limit=1000)
    assert page.events[-1].event_id == after.event_id
    for i, outcome in done.items():
        assert page.events[(outcome.seq or 0) - 1].data == {"i": i}


async def test_a_refused_subscription_raises_on_entry_and_closes_its_connection(
    client: AsyncClient,
) -> None:
    """The daemon's refusal of a subscribe is raised by ``async with`` as its class, and
    the stream's own connection is closed rather than left open."""
    subscription = client.subscribe(-1)
    with pytest.raises(BadRequest):
        async with subscription:
            pass
    assert subscription._conn is None
    assert (await client.ping()).origin
