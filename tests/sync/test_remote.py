"""The ingest client: every answer and failure becomes one typed result, token never shown."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest

from atlasd.eventlog.chain import GENESIS_HASH, seal
from atlasd.redact import MASK
from atlasd.sync.remote import (
    ConvexRemote,
    RemoteAuthError,
    RemoteBadBatch,
    RemoteError,
    RemoteNetworkError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteThrottled,
    RemoteTimeout,
)
from tests.sync.fault_proxy import FaultProxy
from tests.sync.ingest_server import IngestServer

TOKEN = "s3cret-token-value-0123456789"
ORIGIN = "7d1f6a4e-0000-4000-8000-000000000001"


# The last hash sealed for each seq, so events built in order chain as a log's do.
_sealed: dict[int, str] = {}


def _event(seq: int, **extra: object) -> bytes:
    """One stored event's JSON, its hash chained onto the last one built for ``seq - 1``."""
    prev = GENESIS_HASH if seq == 1 else _sealed.get(seq - 1, GENESIS_HASH)
    at = 1_700_000_000_000 + seq
    digest, body = seal(
        prev,
        seq,
        str(uuid.uuid4()),
        "build:b1",
        seq,
        "Note",
        {"n": seq, **extra},
        {},
        at,
        at,
        ORIGIN,
    )
    _sealed[seq] = digest
    return body


@pytest.fixture
def server() -> Iterator[IngestServer]:
    with IngestServer(TOKEN, max_body=20_000) as srv:
        yield srv


@pytest.fixture
async def proxy(server: IngestServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(server.ingest_url, hang_s=2.0) as prx:
        yield prx


def _remote(url: str, token: str = TOKEN, timeout: float = 5.0) -> ConvexRemote:
    return ConvexRemote(url, token, timeout)


async def test_a_batch_is_accepted_then_answered_as_duplicates(server: IngestServer) -> None:
    """A resent batch (a lost answer) is counted as duplicates and stored once."""
    events = [_event(1), _event(2), _event(3)]
    async with _remote(server.ingest_url) as remote:
        first = await remote.ingest(ORIGIN, events)
        again = await remote.ingest(ORIGIN, events)
    assert (first.accepted, first.duplicates, first.high_water) == (3, 0, 3)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, [])
    assert list(server.state.events.values()) == events


async def test_remote_rejections_come_back_with_their_reason(server: IngestServer) -> None:
    """Events the remote refuses inside a 200 are listed with id, code and message."""
    events = [_event(1), _event(2)]
    poison = msgspec.json.decode(events[1])["event_id"]
    server.state.reject_ids.add(poison)
    async with _remote(server.ingest_url) as remote:
        result = await remote.ingest(ORIGIN, events)
    assert result.accepted == 1
    assert [(r.event_id, r.code) for r in result.rejected] == [(poison, "poison")]


async def test_remote_status_reports_the_high_water(server: IngestServer) -> None:
    """GET /status answers the highest contiguous seq held for the origin."""
    async with _remote(server.ingest_url) as remote:
        await remote.ingest(ORIGIN, [_event(1), _event(2), _event(4)])
        status = await remote.remote_status(ORIGIN)
    assert (status.origin, status.high_water, status.events) == (ORIGIN, 2, 3)


async def test_a_wrong_token_is_an_auth_error_that_never_shows_the_token(
    server: IngestServer,
) -> None:
    """401 becomes RemoteAuthError; the echoed token is redacted from message and repr."""
    wrong = "wrong-" + TOKEN
    async with _remote(server.ingest_url, token=wrong) as remote:
        with pytest.raises(RemoteAuthError) as info:
            await remote.ingest(ORIGIN, [_event(1)])
        assert wrong not in repr(remote)
    exc = info.value
    assert exc.status == 401
    assert not exc.retryable
    assert MASK in exc.message
    for text in (str(exc), repr(exc), exc.describe(), repr(exc.__cause__)):
        assert wrong not in text
    assert server.state.events == {}


async def test_a_body_over_the_remote_limit_is_a_bad_batch(server: IngestServer) -> None:
    """413 becomes RemoteBadBatch, which the worker splits instead of retrying as is."""
    async with _remote(server.ingest_url) as remote:
        with pytest.raises(RemoteBadBatch) as info:
            await remote.ingest(ORIGIN, [_event(i, pad="x" * 1000) for i in range(1, 40)])
    assert info.value.status == 413
    assert info.value.kind == "bad_batch"


async def test_a_closed_port_is_a_retryable_network_error() -> None:
    """Connection refused becomes RemoteNetworkError, retryable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _remote(f"http://127.0.0.1:{port}/atlasd/ingest") as remote:
        with pytest.raises(RemoteNetworkError) as info:
            await remote.ingest(ORIGIN, [_event(1)])
    assert info.value.retryable
    assert info.value.kind == "network"


@pytest.mark.parametrize(
    ("fault", "error", "kind"),
    [
        ("reset", RemoteNetworkError, "network"),
        ("drop", RemoteNetworkError, "network"),
        ("timeout", RemoteTimeout, "timeout"),
        ("500", RemoteServerError, "server"),
        ("429:3", RemoteThrottled, "throttled"),
        ("400", RemoteBadBatch, "bad_batch"),
    ],
)
async def test_each_failure_is_translated_into_one_typed_error(
    proxy: FaultProxy, server: IngestServer, fault: str, error: type[RemoteError], kind: str
) -> None:
    """Resets, lost answers, timeouts, 5xx, 429 and 400 each map to their kind."""
    proxy.faults.append(fault)
    async with _remote(proxy.url_for(server.ingest_url), timeout=0.5) as remote:
        with pytest.raises(error) as info:
            await remote.ingest(ORIGIN, [_event(1)])
        assert info.value.kind == kind
        assert info.value.retryable == (kind != "bad_batch")
        # The next request goes through: nothing is stuck after a failure.
        result = await remote.ingest(ORIGIN, [_event(2)])
    assert result.accepted == 1
    if fault == "429:3":
        assert isinstance(info.value, RemoteThrottled)
        assert info.value.retry_after == 3.0


async def test_an_answer_that_is_not_an_ingest_result_is_a_protocol_error(
    server: IngestServer,
) -> None:
    """A 200 with an unexpected body (a wrong URL) is retryable, never taken as success."""
    async with _remote(server.ingest_url + "/garbage") as remote:
        with pytest.raises(RemoteProtocolError) as info:
            await remote.ingest(ORIGIN, [_event(1)])
    assert info.value.retryable
    assert "html" in info.value.message


async def test_a_missing_route_is_a_protocol_error(server: IngestServer) -> None:
    """A 404 (wrong path) is reported as protocol, with the status, not as a bad batch."""
    async with _remote(server.ingest_url + "/nope") as remote:
        with pytest.raises(RemoteProtocolError) as info:
            await remote.remote_status(ORIGIN)
    assert info.value.status == 404


async def test_batches_reuse_one_connection(proxy: FaultProxy, server: IngestServer) -> None:
    """Consecutive requests travel over one kept-alive connection."""
    async with _remote(proxy.url_for(server.ingest_url)) as remote:
        for seq in range(1, 6):
            await remote.ingest(ORIGIN, [_event(seq)])
        await remote.remote_status(ORIGIN)
    assert proxy.connections == 1
    assert len(server.state.events) == 5
