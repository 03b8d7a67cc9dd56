"""Answers the clients cannot use (a hostile daemon, another version's shapes) raise
``internal`` naming the op, never a decoder's or a dict's own exception."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from atlasd.client import AsyncClient, Client
from atlasd.client.metrics import exposition
from atlasd.errors import AtlasdError, Internal, VersionConflict
from atlasd.events import NewEvent
from tests.daemon.conftest import NO_SPOOL
from tests.support.daemon import running_daemon


class ScriptedDaemon:
    """A real Unix socket answering each request with the result scripted for its op
    (``error`` scripts a failure line instead)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[str, Any] = {}
        self.errors: dict[str, dict[str, Any]] = {}
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as lines:
            for line in lines:
                request = json.loads(line)
                op = request["op"]
                if op in self.errors:
                    answer = {"id": request["id"], "ok": False, "error": self.errors[op]}
                else:
                    answer = {"id": request["id"], "ok": True, "result": self.results[op]}
                lines.write(json.dumps(answer).encode() + b"\n")
                lines.flush()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[ScriptedDaemon]:
    daemon = ScriptedDaemon(tmp_path / "d.sock")
    try:
        yield daemon
    finally:
        daemon.close()


#: op -> an answer of the wrong shape, and the client call that reads it
BAD_ANSWERS: dict[str, Any] = {
    "ping": {"version": 1},
    "append": {"seq": "one"},
    "append_batch": {"results": "none"},
    "read": {"events": [{"seq": 1}], "last_seq": 1},
    "query": {"rows": 5},
    # an older daemon's status, before the integrity check and the spool counts
    "status": {"origin": "o", "last_seq": 1, "sync": {"state": "idle"}},
    "sync_now": {"triggered": "yes"},
}

CALLS: dict[str, Callable[[Client], object]] = {
    "ping": lambda c: c.ping(),
    "append": lambda c: c.append("s", "T", {}),
    "append_batch": lambda c: c.append_batch([NewEvent(stream="s", type="T", data={})]),
    "read": lambda c: c.read(),
    "query": lambda c: c.query("builds"),
    "status": lambda c: c.status(),
    "sync_now": lambda c: c.sync_now(),
}


@pytest.mark.parametrize("op", sorted(BAD_ANSWERS))
def test_an_answer_of_the_wrong_shape_raises_internal_naming_the_op(
    scripted: ScriptedDaemon, op: str
) -> None:
    """Each typed call turns an answer it cannot decode into ``internal``."""
    scripted.results[op] = BAD_ANSWERS[op]
    with Client(scripted.path, spool=False) as client:
        with pytest.raises(Internal, match=f"unexpected answer to {op}"):
            CALLS[op](client)
        scripted.results["ping"] = {"version": "1", "origin": "o"}
        assert client.ping().origin == "o"  # the connection is still of use


async def test_the_async_client_raises_internal_too(scripted: ScriptedDaemon) -> None:
    """The async client shares the answer handling: ``status`` and ``append_batch``."""
    scripted.results.update(status=BAD_ANSWERS["status"], append_batch=[1, 2])
    async with AsyncClient(scripted.path, spool=False) as client:
        with pytest.raises(Internal, match="unexpected answer to status"):
            await client.status()
        with pytest.raises(Internal, match="unexpected answer to append_batch"):
            await client.append_batch([NewEvent(stream="s", type="T", data={})])


@pytest.mark.parametrize(
    "error",
    [
        {"code": "version_conflict", "message": "m", "current_version": "two"},
        {"code": "version_conflict", "message": "m", "current_version": None},
        {"code": "internal", "message": "m", "self": 1},
        {"code": "unavailable", "message": ["not", "text"], "message_id": 3},
    ],
)
def test_a_failure_line_of_any_shape_raises_an_atlasd_error(
    scripted: ScriptedDaemon, error: dict[str, Any]
) -> None:
    """The error a daemon reports is rebuilt whatever its extra fields hold."""
    scripted.errors["ping"] = error
    with Client(scripted.path, spool=False) as client, pytest.raises(AtlasdError) as caught:
        client.ping()
    if error["code"] == "version_conflict":
        assert isinstance(caught.value, VersionConflict)
        assert caught.value.current_version == -1


def test_a_status_whose_histogram_does_not_add_up_is_refused_when_decoded(
    scripted: ScriptedDaemon,
) -> None:
    """Commit counts that do not match their bounds are ``internal`` at ``status()``,
    so ``atlasd metrics`` never fails half-way through rendering them."""
    with running_daemon(args=NO_SPOOL) as real, Client(real.socket, spool=False) as client:
        status = client.status_raw()
    status["counters"]["commit_buckets"] = [1, 2]
    scripted.results["status"] = status
    with Client(scripted.path, spool=False) as client:
        with pytest.raises(Internal, match="commit_buckets has 2 counts"):
            client.status()
        status["counters"]["commit_buckets"] = []  # none yet: nothing to add up
        assert client.status().counters.commit_buckets == []


def test_a_status_from_a_daemon_before_retention_is_read_and_rendered(
    scripted: ScriptedDaemon,
) -> None:
    """A daemon started before the package was upgraded sends no ``compaction``: the
    status still decodes (``compaction`` unset) and ``atlasd metrics`` renders it."""
    with running_daemon(args=NO_SPOOL) as real, Client(real.socket, spool=False) as client:
        status = client.status_raw()
    del status["compaction"]
    scripted.results["status"] = status
    with Client(scripted.path, spool=False) as client:
        report = client.status()
    assert report.compaction is msgspec.UNSET
    text = exposition(report).decode()
    assert "atlasd_last_seq" in text
    assert "atlasd_compaction_last_events" not in text
