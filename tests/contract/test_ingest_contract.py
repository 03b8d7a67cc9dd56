"""One ingest contract, two remotes: the Python test ingest server and the Convex double
(our own Convex functions) answer the sync's requests alike.

Every test runs against both, with the daemon's own client (``ConvexRemote``) and
events sealed by a real store, so the two can never drift apart unnoticed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest

from atlasd.eventlog import EventStore, NewEvent, StoreConfig
from atlasd.sync.remote import ConvexRemote, RemoteAuthError, RemoteBadBatch, RemoteError
from tests.support.convex_double import ConvexDouble
from tests.sync.ingest_server import IngestServer


class Endpoint(msgspec.Struct):
    name: str
    ingest_url: str
    token: str


@pytest.fixture(scope="module")
def python_server() -> Iterator[IngestServer]:
    with IngestServer("contract-token") as server:
        yield server


@pytest.fixture(params=["python", "convex"])
def endpoint(request: pytest.FixtureRequest, python_server: IngestServer) -> Endpoint:
    """Each remote in turn: same questions, same answers expected."""
    if request.param == "python":
        return Endpoint(name="python", ingest_url=python_server.ingest_url, token="contract-token")
    double: ConvexDouble = request.getfixturevalue("convex_double")
    return Endpoint(name="convex", ingest_url=double.ingest_url, token=double.token)


@pytest.fixture
async def sealed(tmp_path: Path) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A fresh origin's first ten events as its store encoded and hashed them."""
    async with await EventStore.open(StoreConfig(data_dir=tmp_path / "data")) as store:
        for i in range(10):
            await store.append(
                NewEvent(stream=f"tool:{i % 3}", type="ContractChecked", data={"i": i})
            )
        rows = await store.read_raw(0, 100)
        yield store.origin, [body for _, body in rows]


def remote(endpoint: Endpoint, key: str, token: str | None = None) -> ConvexRemote:
    return ConvexRemote(endpoint.ingest_url, token or endpoint.token, 10.0, origin_key=key)


async def test_a_batch_is_stored_once_and_a_retry_counts_duplicates(
    endpoint: Endpoint, sealed: tuple[str, list[bytes]]
) -> None:
    """200 with every event accounted for; the same batch again is all duplicates."""
    origin, events = sealed
    key = uuid.uuid4().hex
    async with remote(endpoint, key) as r:
        first = await r.ingest(origin, events)
        again = await r.ingest(origin, events)
        status = await r.remote_status(origin)
    assert (first.accepted, first.duplicates, first.rejected, first.high_water) == (10, 0, [], 10)
    assert (again.accepted, again.duplicates, again.rejected, again.high_water) == (0, 10, [], 10)
    assert (status.origin, status.high_water, status.events) == (origin, 10, 10)


async def test_the_high_water_stops_at_the_first_gap(
    endpoint: Endpoint, sealed: tuple[str, list[bytes]]
) -> None:
    """Events after a missing seq are stored but the high water waits for the gap."""
    origin, events = sealed
    async with remote(endpoint, uuid.uuid4().hex) as r:
        assert (await r.ingest(origin, events[:3])).high_water == 3
        assert (await r.ingest(origin, events[4:6])).high_water == 3
        assert (await r.ingest(origin, events[3:4])).high_water == 6


async def test_a_wrong_token_is_an_auth_error(
    endpoint: Endpoint, sealed: tuple[str, list[bytes]]
) -> None:
    """A bad bearer token is 401/403 (RemoteAuthError) and stores nothing."""
    origin, events = sealed
    async with remote(endpoint, uuid.uuid4().hex, token="not-the-token") as r:
        with pytest.raises(RemoteAuthError):
            await r.ingest(origin, events)
    async with remote(endpoint, uuid.uuid4().hex) as r:
        assert (await r.remote_status(origin)).events in (0, None)


async def test_another_key_cannot_write_under_a_bound_origin(
    endpoint: Endpoint, sealed: tuple[str, list[bytes]]
) -> None:
    """The first key an origin is seen with binds it; another key is refused (403)."""
    origin, events = sealed
    async with remote(endpoint, "owner-key") as r:
        await r.ingest(origin, events[:2])
    async with remote(endpoint, "thief-key") as r:
        with pytest.raises(RemoteAuthError):
            await r.ingest(origin, events[2:4])
    async with remote(endpoint, "owner-key") as r:
        assert (await r.remote_status(origin)).high_water == 2


async def test_an_event_whose_content_does_not_match_its_hash_is_rejected(
    endpoint: Endpoint, sealed: tuple[str, list[bytes]]
) -> None:
    """A tampered event is a per-event rejection (hash_mismatch), the rest of the batch lands."""
    origin, events = sealed
    forged = events[0].replace(b'"i":0', b'"i":7')
    assert forged != events[0]
    async with remote(endpoint, uuid.uuid4().hex) as r:
        result = await r.ingest(origin, [forged])
    assert result.accepted == 0
    assert [x.code for x in result.rejected] == ["hash_mismatch"]
    assert result.high_water in (0, None)


async def test_a_malformed_batch_is_a_bad_batch(endpoint: Endpoint) -> None:
    """An event that is not an envelope makes the batch 400: the sender splits it."""
    async with remote(endpoint, uuid.uuid4().hex) as r:
        with pytest.raises(RemoteBadBatch):
            await r.ingest(str(uuid.uuid4()), [b'{"seq": "one"}'])


async def test_nothing_else_escapes_as_an_unexpected_error(
    endpoint: Endpoint, sealed: tuple[str, list[bytes]]
) -> None:
    """The status of an origin never seen is an answer, not an error."""
    async with remote(endpoint, uuid.uuid4().hex) as r:
        try:
            status = await r.remote_status(str(uuid.uuid4()))
        except RemoteError as exc:  # pragma: no cover - shown on failure
            pytest.fail(f"{endpoint.name}: {exc.describe()}")
    assert status.high_water in (0, None)
