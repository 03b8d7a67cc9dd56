"""Reading the deployment back with the read token: ``atlasd remote`` against the double."""

from __future__ import annotations

import base64
import json
import shlex
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from atlasd.remote_read import (
    ConvexReader,
    RemoteReadError,
    RemoteReadRefused,
    from_convex_json,
)
from tests.support.convex_double import ConvexDouble, envelopes
from tests.support.daemon import DaemonProcess, clean_env, running_daemon

_ROOT = Path(__file__).resolve().parents[2]
# Legacy vectors hold events the append-time schema refuses: not appendable over the socket.
VECTORS = [
    path
    for path in sorted((_ROOT / "tests" / "vectors").glob("*.json"))
    if not json.loads(path.read_text()).get("legacy", False)
]
# Every view of every built-in pack, with its key columns.
KEYS = {
    view: tuple(definition["key"])
    for pack in sorted((_ROOT / "atlasd" / "packs" / "builtin").glob("*.json"))
    for view, definition in json.loads(pack.read_text())["views"].items()
}
# Generous: the daemon starts, appends and syncs within a second or two here.
_WAIT = 60.0


def _remote(
    double: ConvexDouble, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``atlasd remote ARGS`` against the double, with its read token unless ``token``."""
    env = clean_env({"CONVEX_URL": double.url})
    env["ATLASD_READ_TOKEN"] = double.read_token if token is None else token
    return subprocess.run(
        [sys.executable, "-m", "atlasd", "remote", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=_WAIT,
        check=False,
    )


def _append_vectors(daemon: DaemonProcess) -> int:
    appended = 0
    for path in VECTORS:
        batch = [
            {
                "stream": e["stream"],
                "type": e["type"],
                "data": e["data"],
                "event_id": e["event_id"],
                **({"meta": e["meta"]} if "meta" in e else {}),
                **({"occurred_at": e["occurred_at"]} if "occurred_at" in e else {}),
            }
            for e in json.loads(path.read_text())["events"]
        ]
        answer = daemon.request("append_batch", events=batch)
        assert answer["ok"], answer
        appended += len(answer["result"]["results"])
    return appended


def _synced(daemon: DaemonProcess) -> dict[str, Any]:
    deadline = time.monotonic() + _WAIT
    while True:
        status: dict[str, Any] = daemon.request("status")["result"]
        if status["sync"]["acked_seq"] == status["last_seq"]:
            return status
        assert time.monotonic() < deadline, f"sync never caught up: {status['sync']}"
        daemon.request("sync_now")
        time.sleep(0.1)


def _sorted(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: [str(r[k]) for k in keys])


@pytest.mark.slow
def test_after_a_sync_every_view_paged_through_the_remote_equals_the_local_view(
    convex_double: ConvexDouble,
) -> None:
    """``atlasd remote query VIEW --all`` in pages of 2 gives the daemon's own rows, row for row."""
    env = {
        "ATLASD_INGEST_URL": convex_double.ingest_url,
        "ATLASD_INGEST_TOKEN": convex_double.token,
    }
    with running_daemon(env=env) as daemon:
        appended = _append_vectors(daemon)
        status = _synced(daemon)
        assert status["last_seq"] == appended
        origin = status["origin"]
        local_events = daemon.request("read", limit=10_000)["result"]["events"]
        local_views = {
            view: daemon.request("query", view=view, limit=10_000)["result"]["rows"]
            for view in KEYS
        }
    for view, keys in KEYS.items():
        run = _remote(convex_double, "query", view, "--all", "--limit", "2", "--json")
        assert run.returncode == 0, run.stderr
        remote = json.loads(run.stdout)
        assert remote, f"the vectors give {view} rows"
        assert {row.pop("origin") for row in remote} == {origin}, view
        local = [{k: v for k, v in row.items() if k != "origin"} for row in local_views[view]]
        assert _sorted(remote, keys) == _sorted(local, keys), view
    with ConvexReader(convex_double.url, convex_double.read_token) as reader:
        remote_events: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = reader.events_page(cursor=cursor, page_size=7, origin=origin)
            remote_events += page.rows
            if page.cursor is None:
                break
            cursor = page.cursor
        assert remote_events == local_events
        (known,) = reader.origins()
        assert (known.origin, known.high_water, known.events) == (origin, appended, appended)


def test_remote_origins_lists_each_machine_that_synced(convex_double: ConvexDouble) -> None:
    """``atlasd remote origins --json`` shows each origin's high water and event count."""
    origin = str(uuid.uuid4())
    events = [
        {
            "stream": "s",
            "type": "Other",
            "data": {},
            "event_id": str(uuid.uuid4()),
            "recorded_at": 1,
        }
        for _ in range(3)
    ]
    assert convex_double.ingest(origin, envelopes(origin, events)).status_code == 200
    run = _remote(convex_double, "origins", "--json")
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert (row["origin"], row["high_water"], row["events"]) == (origin, 3, 3)
    assert isinstance(row["last_ingest_at"], int)


def test_a_read_with_the_ingest_token_is_refused_and_the_token_never_printed(
    convex_double: ConvexDouble,
) -> None:
    """The ingest token opens no read: exit 1, ``unauthorized``, the secret not echoed."""
    run = _remote(convex_double, "query", "builds", token=convex_double.token)
    assert run.returncode == 1
    assert "unauthorized" in run.stderr
    assert convex_double.token not in run.stderr + run.stdout
    with (
        ConvexReader(convex_double.url, "wrong-" + convex_double.read_token) as reader,
        pytest.raises(RemoteReadRefused) as refused,
    ):
        reader.origins()
    assert refused.value.remote_code == "unauthorized"


def test_remote_query_without_a_read_token_is_a_usage_error(convex_double: ConvexDouble) -> None:
    """No ``ATLASD_READ_TOKEN``: exit 2 naming the variable, nothing sent."""
    run = _remote(convex_double, "query", "builds", token="")
    assert run.returncode == 2
    assert "ATLASD_READ_TOKEN" in run.stderr


def test_an_unreachable_deployment_exits_3() -> None:
    """A URL nobody answers: exit 3 (unreachable), as for a daemon that is not running."""
    env = clean_env({"CONVEX_URL": "http://127.0.0.1:9", "ATLASD_READ_TOKEN": "t"})
    run = subprocess.run(
        [sys.executable, "-m", "atlasd", "remote", "query", "builds"],
        env=env,
        capture_output=True,
        text=True,
        timeout=_WAIT,
        check=False,
    )
    assert run.returncode == 3, run.stderr
    assert "unreachable" in run.stderr


def test_a_page_that_is_not_the_last_says_how_to_continue(convex_double: ConvexDouble) -> None:
    """Without ``--all`` a partial page names its ``--after`` cursor; following it reads on."""
    origin = str(uuid.uuid4())
    events = [
        {
            "stream": f"build:b{i}",
            "type": "BuildStarted",
            "data": {"build_id": f"b{i}", "prd_id": "p", "prd_name": "P"},
            "event_id": str(uuid.uuid4()),
            "recorded_at": 1000 + i,
        }
        for i in range(3)
    ]
    assert convex_double.ingest(origin, envelopes(origin, events)).status_code == 200
    seen: list[str] = []
    args = ["query", "builds", "--limit", "2", "--json"]
    for _ in range(3):
        run = _remote(convex_double, *args)
        assert run.returncode == 0, run.stderr
        seen += [row["build_id"] for row in json.loads(run.stdout)]
        if "--after" not in run.stderr:
            break
        cursor = run.stderr.split("--after ", 1)[1].split(" or read all", 1)[0]
        args = ["query", "builds", "--limit", "2", "--json", "--after", _unquote(cursor)]
    assert seen == ["b0", "b1", "b2"]


def _unquote(word: str) -> str:
    (value,) = shlex.split(word)
    return value


def test_a_reader_reports_a_non_convex_answer_as_unavailable(convex_double: ConvexDouble) -> None:
    """A URL that is no Convex deployment gives a RemoteReadError, not a crash."""
    with (
        ConvexReader(convex_double.url + "/nowhere", convex_double.read_token) as reader,
        pytest.raises(RemoteReadError),
    ):
        reader.origins()


def test_convex_wire_values_decode_to_python_values() -> None:
    """``$integer``, ``$float`` and ``$bytes`` become int, float and bytes, at any depth."""
    five = base64.b64encode(struct.pack("<q", 5)).decode()
    infinity = base64.b64encode(struct.pack("<d", float("inf"))).decode()
    raw = base64.b64encode(b"\x00\x01").decode()
    value = {"rows": [{"n": {"$integer": five}, "f": {"$float": infinity}, "b": {"$bytes": raw}}]}
    assert from_convex_json(value) == {"rows": [{"n": 5, "f": float("inf"), "b": b"\x00\x01"}]}
    assert from_convex_json({"$integer": five, "other": 1}) == {"$integer": five, "other": 1}


def _jwt(issuer: str, subject: str) -> str:
    """An unsigned JWT with ``iss`` and ``sub`` (the double decodes, never verifies)."""

    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'iss': issuer, 'sub': subject})}."


@pytest.mark.slow
def test_a_signed_in_identity_listed_on_the_deployment_reads_without_the_token() -> None:
    """Over HTTP, a JWT of a listed identity reads; another user of the same issuer is refused."""
    issuer = "https://auth.example.test"
    env = {"ATLASD_READ_IDENTITIES": f"{issuer}|alice"}
    with ConvexDouble(env=env) as double:
        with ConvexReader(double.url, None, identity_token=_jwt(issuer, "alice")) as alice:
            assert alice.origins() == []
        bob_token = _jwt(issuer, "bob")
        with (
            ConvexReader(double.url, None, identity_token=bob_token) as bob,
            pytest.raises(RemoteReadRefused) as refused,
        ):
            bob.origins()
        assert refused.value.remote_code == "unauthorized"
        assert bob_token not in refused.value.message
        with (
            ConvexReader(double.url, None, identity_token="not-a-jwt") as broken,
            pytest.raises(RemoteReadError, match="HTTP 401"),
        ):
            broken.origins()
