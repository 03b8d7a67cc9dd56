"""A remote that lies, fails one event forever, echoes secrets or floods answers; keys and URLs."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from atlasd.config import ConfigError, check_ingest_url, resolve_config
from atlasd.eventlog import EventStore
from atlasd.events import NewEvent
from atlasd.redact import MASK, Redactor
from atlasd.sync.origin_key import load_or_create_origin_key
from atlasd.sync.remote import MAX_ANSWER_BYTES, ConvexRemote, RemoteProtocolError
from atlasd.sync.worker import SyncWorker
from atlasd.wire import SyncNowResult, SyncStatus
from tests.sync.fault_proxy import FaultProxy
from tests.sync.helpers import fast_config, local_events, running, wait_synced
from tests.sync.ingest_server import IngestServer

TOKEN = 'tok/en+with=odd&chars"0123'


def _notes(count: int) -> list[NewEvent]:
    return [NewEvent(stream="notes", type="Note", data={"i": i}) for i in range(count)]


class _Longest(random.Random):
    """Full jitter that always waits the whole step, so a test sees the backoff state."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def _one_round(
    store: EventStore, server: IngestServer, **overrides: Any
) -> tuple[SyncNowResult, SyncStatus]:
    """One round with a 30 s backoff step; its outcome and the status right after."""
    config = fast_config(server.ingest_url, server.token, backoff_base_s=30.0, **overrides)
    worker = SyncWorker(store, config, rng=_Longest())
    async with running(worker):
        outcome = await worker.sync_now(wait=True)
        status = await worker.status()
    return outcome, status


# -- a 200 must account for the batch ------------------------------------------------------


@pytest.mark.parametrize(
    ("lie", "says"),
    [
        (lambda a: {**a, "accepted": a["accepted"] - 1}, "accounts for"),
        (lambda a: {**a, "duplicates": a["duplicates"] + 1}, "accounts for"),
        (lambda a: {**a, "high_water": 10_000}, "high_water"),
        (lambda a: {k: v for k, v in a.items() if k != "high_water"}, "high_water"),
        (
            lambda a: {
                **a,
                "accepted": a["accepted"] - 1,
                "rejected": [{"event_id": "not-sent", "code": "x", "message": ""}],
            },
            "was not sent",
        ),
    ],
    ids=["too few", "too many", "high water past the log", "no high water", "unknown id"],
)
async def test_a_200_that_does_not_account_for_the_batch_moves_no_cursor(
    store: EventStore, ingest_server: IngestServer, lie: Any, says: str
) -> None:
    """A 200 whose counts or high water do not match what was sent is a protocol error in status."""
    await store.append_batch(_notes(5))
    ingest_server.state.tamper = lie
    outcome, status = await _one_round(store, ingest_server)
    assert outcome.ok is False
    assert isinstance(outcome.error, str)
    assert outcome.error.startswith("protocol:")
    assert says in outcome.error
    assert (status.acked_seq, status.state, status.rejected) == (0, "backoff", 0)
    assert status.last_error == outcome.error


async def test_an_honest_200_after_a_lie_delivers_everything_once(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """Once the remote answers truthfully, the batch the lie covered is acknowledged."""
    await store.append_batch(_notes(5))
    ingest_server.state.tamper = lambda a: {**a, "accepted": 0}
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, ingest_server.token))
    async with running(worker):
        assert (await worker.sync_now(wait=True)).ok is False
        ingest_server.state.tamper = None
        status = await wait_synced(worker)
    assert status.acked_seq == 5
    assert len(ingest_server.state.events) == 5


async def test_an_answer_over_the_size_limit_is_a_protocol_error(
    ingest_server: IngestServer,
) -> None:
    """A remote streaming more than MAX_ANSWER_BYTES is cut off, not read into memory."""
    ingest_server.state.tamper = lambda a: {**a, "padding": "x" * (MAX_ANSWER_BYTES + 10)}
    async with ConvexRemote(ingest_server.ingest_url, ingest_server.token, 5.0) as remote:
        with pytest.raises(RemoteProtocolError, match="answer over"):
            await remote.ingest("origin-1", [])


# -- an event that fails the remote --------------------------------------------------------


async def test_an_event_that_always_fails_the_remote_is_isolated_and_quarantined(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """Repeated 500s halve batches until the failing event is alone; it alone is quarantined."""
    await store.append_batch(_notes(40))
    events = await local_events(store)
    poison = events[19]
    ingest_server.state.fail_ids.add(poison.event_id)
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, ingest_server.token))
    async with running(worker):
        status = await wait_synced(worker)
    assert (status.acked_seq, status.rejected) == (40, 1)
    assert set(ingest_server.state.events) == {e.event_id for e in events} - {poison.event_id}
    quarantine = await store.sync.rejected_events()
    assert [(r.seq, r.code) for r in quarantine] == [(20, "remote_error")]
    # Full-size batches again once the failing region is passed.
    assert ingest_server.state.batch_sizes[-1] > 1


async def test_a_remote_that_fails_everything_quarantines_nothing(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """When status fails too, the remote is down, not the event: nothing is quarantined."""
    await store.append_batch(_notes(2))
    async with FaultProxy(ingest_server.ingest_url) as proxy:
        proxy.mode = "500"
        config = fast_config(proxy.url_for(ingest_server.ingest_url), ingest_server.token)
        worker = SyncWorker(store, config)
        async with running(worker):
            for _ in range(12):
                await worker.sync_now(wait=True)
            status = await worker.status()
    assert (status.acked_seq, status.rejected, status.state) == (0, 0, "backoff")


# -- every 200 is progress -----------------------------------------------------------------


async def test_every_acknowledged_batch_restarts_the_backoff(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """A failure after a 200 waits only the first backoff step, however many failed before."""
    await store.append_batch(_notes(48))
    async with FaultProxy(ingest_server.ingest_url) as proxy:
        proxy.faults.extend(["500", "500", "pass", "500"])
        config = fast_config(
            proxy.url_for(ingest_server.ingest_url),
            ingest_server.token,
            backoff_base_s=0.01,
            backoff_cap_s=600.0,
        )
        worker = SyncWorker(store, config)
        async with running(worker):
            for _ in range(2):
                await worker.sync_now(wait=True)
            outcome = await worker.sync_now(wait=True)  # one 200, then a 500
            status = await worker.status()
            assert outcome.acked_seq == 16
            assert outcome.ok is False
            assert status.failures == 1
            assert outcome.next_attempt_ms <= time.time() * 1000 + 10 + 50
            status = await wait_synced(worker)
    assert status.acked_seq == 48


# -- secrets -------------------------------------------------------------------------------


def test_redaction_covers_every_form_a_secret_may_be_echoed_in() -> None:
    """The token as is, percent-encoded, form-encoded and JSON-escaped, and URL credentials."""
    from urllib.parse import quote, quote_plus

    forms = [TOKEN, quote(TOKEN, safe=""), quote_plus(TOKEN), msgspec.json.encode(TOKEN).decode()]
    text = " | ".join(forms) + " https://user:pa55@host.example/x"
    cleaned = Redactor([TOKEN])(text)
    assert "pa55" not in cleaned
    assert "user" not in cleaned
    for form in forms:
        assert form.strip('"') not in cleaned
    assert cleaned.count(MASK) >= 5


async def test_a_token_echoed_by_the_remote_never_reaches_status(
    store: EventStore, short_dir: Path
) -> None:
    """A 401 body echoing the header, with odd characters in the token, is shown redacted."""
    with IngestServer("another-token") as server:
        await store.append_batch(_notes(1))
        worker = SyncWorker(store, fast_config(server.ingest_url, TOKEN))
        async with running(worker):
            outcome = await worker.sync_now(wait=True)
            status = await worker.status()
    assert outcome.state == "auth_error"
    assert "given" in status.last_error
    for text in (outcome.error, status.last_error):
        assert TOKEN not in text
        assert TOKEN[:10] not in text


# -- the origin key ------------------------------------------------------------------------


def test_the_origin_key_is_made_once_private_and_kept(short_dir: Path) -> None:
    """The first call makes a 0600 file of 64 hex digits; later calls read the same key."""
    path = short_dir / "origin-key"
    key = load_or_create_origin_key(path)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_origin_key(path) == key


def test_a_damaged_origin_key_is_refused_not_replaced(short_dir: Path) -> None:
    """A key file that is not 64 hex digits is a ConfigError and stays as it was."""
    path = short_dir / "origin-key"
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match="not 64 hex digits"):
        load_or_create_origin_key(path)
    assert path.read_text() == "not a key\n"


async def test_another_machine_with_the_token_cannot_write_under_a_bound_origin(
    store: EventStore, ingest_server: IngestServer, short_dir: Path
) -> None:
    """The first daemon's key binds its origin; the same origin with another key is auth_error."""
    await store.append_batch(_notes(3))
    first = fast_config(
        ingest_server.ingest_url, ingest_server.token, origin_key_file=short_dir / "key-a"
    )
    worker = SyncWorker(store, first)
    async with running(worker):
        assert (await worker.sync_now(wait=True)).ok is True
    await store.append_batch(_notes(2))
    thief = fast_config(
        ingest_server.ingest_url, ingest_server.token, origin_key_file=short_dir / "key-b"
    )
    worker = SyncWorker(store, thief)
    async with running(worker):
        outcome = await worker.sync_now(wait=True)
    assert outcome.state == "auth_error"
    assert "origin_key" in outcome.error
    assert len(ingest_server.state.events) == 3


# -- the ingest URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.convex.site/atlasd/ingest",
        "http://127.0.0.1:3210/atlasd/ingest",
        "http://127.8.9.10/atlasd/ingest",
        "http://localhost:8080/x",
        "http://[::1]:8080/x",
    ],
)
def test_https_anywhere_and_http_to_loopback_are_accepted(url: str) -> None:
    """https to any host, and plain http to localhost, 127.0.0.0/8 or ::1, are kept."""
    assert check_ingest_url(url) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://example.com/atlasd/ingest", "plain http"),
        ("http://10.0.0.1/atlasd/ingest", "plain http"),
        ("http://127.0.0.1.example.com/x", "plain http"),
        ("https://user:secret@example.com/x", "credentials"),
        ("ftp://example.com/x", "not an http"),
    ],
)
def test_unsafe_ingest_urls_are_refused(url: str, says: str) -> None:
    """Plain http off the machine, credentials in the URL, or another scheme: a ConfigError."""
    with pytest.raises(ConfigError, match=says) as info:
        check_ingest_url(url)
    assert "secret" not in str(info.value)


def test_resolved_config_refuses_a_plain_http_convex_url_and_keys_the_data_dir(
    short_dir: Path,
) -> None:
    """CONVEX_URL over http to a remote host is refused; a valid one gets DATA_DIR/origin-key."""
    env = {"ATLASD_DATA_DIR": str(short_dir), "CONVEX_URL": "http://convex.example.com"}
    with pytest.raises(ConfigError, match="plain http"):
        resolve_config(env=env)
    env["CONVEX_URL"] = "https://name.convex.cloud"
    config = resolve_config(env=env)
    assert config.sync.ingest_url == "https://name.convex.site/atlasd/ingest"
    assert config.sync.origin_key_file == short_dir / "origin-key"


def test_the_origin_key_file_may_be_set_in_the_config_file(short_dir: Path) -> None:
    """``[sync] origin_key_file`` in the TOML file is read as a path."""
    config_file = short_dir / "atlasd.toml"
    config_file.write_text(
        '[sync]\ningest_url = "https://x.convex.site/atlasd/ingest"\n'
        f'origin_key_file = "{short_dir}/elsewhere/key"\n'
    )
    config = resolve_config(env={"ATLASD_DATA_DIR": str(short_dir)}, config_file=config_file)
    assert config.sync.origin_key_file == short_dir / "elsewhere" / "key"


async def test_events_sent_under_a_new_origin_pass_the_remote_hash_check(
    store: EventStore, ingest_server: IngestServer
) -> None:
    """After a change of origin, old events carry logged_origin and are accepted, none rejected."""
    await store.append_batch(_notes(3))
    old = store.origin
    await store.reorigin("test: a restored log")
    await store.append_batch(_notes(2))
    worker = SyncWorker(store, fast_config(ingest_server.ingest_url, ingest_server.token))
    async with running(worker):
        status = await wait_synced(worker)
    assert (status.acked_seq, status.rejected) == (5, 0)
    arrived = ingest_server.state.decoded()
    assert [e["origin"] for e in arrived] == [store.origin] * 5
    assert [e.get("logged_origin") for e in arrived] == [old] * 3 + [None] * 2
