"""Every op of the protocol (docs/protocol.md) against a real daemon, and every error code
it sends."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import msgspec

from atlasd import wire
from atlasd.events import Event
from atlasd.packs.registry import builtin_packs
from tests.daemon.conftest import event
from tests.support.daemon import DaemonProcess


def test_ping_answers_version_and_origin(daemon: DaemonProcess) -> None:
    """ping returns the daemon version and the data dir's origin UUID."""
    response = daemon.request("ping", id=1)
    assert response["id"] == 1
    assert response["ok"] is True
    assert set(response["result"]) == {"version", "origin"}
    assert uuid.UUID(response["result"]["origin"])


def test_ids_of_every_scalar_kind_are_echoed(daemon: DaemonProcess) -> None:
    """Any JSON scalar id comes back unchanged; a request without id is answered with null."""
    with daemon.connect() as conn:
        for request_id in (7, "abc", 1.5, True, None):
            assert conn.request("ping", id=request_id)["id"] == request_id
        assert conn.request("ping")["id"] is None


def test_append_assigns_seq_version_and_event_id(daemon: DaemonProcess) -> None:
    """append returns seq, event_id, version and duplicate=false for a new event."""
    with daemon.connect() as conn:
        first = conn.request("append", **event(1))["result"]
        second = conn.request("append", **event(2))["result"]
    assert (first["seq"], first["version"], first["duplicate"]) == (1, 1, False)
    assert (second["seq"], second["version"]) == (2, 2)
    assert uuid.UUID(first["event_id"]) != uuid.UUID(second["event_id"])


def test_append_with_same_event_id_is_a_duplicate(daemon: DaemonProcess) -> None:
    """Re-sending an append with its event_id returns the stored seq with duplicate=true."""
    event_id = str(uuid.uuid4())
    with daemon.connect() as conn:
        first = conn.request("append", event_id=event_id, **event(1))["result"]
        again = conn.request("append", event_id=event_id, **event(1))["result"]
        status = conn.request("status")["result"]
    assert again == {**first, "duplicate": True}
    assert status["events"] == 1


def test_append_with_same_event_id_other_content_conflicts(daemon: DaemonProcess) -> None:
    """The same event_id with different data is event_id_conflict and appends nothing."""
    event_id = str(uuid.uuid4())
    with daemon.connect() as conn:
        conn.request("append", event_id=event_id, **event(1))
        response = conn.request("append", event_id=event_id, **event(2))
        assert response["ok"] is False
        assert response["error"]["code"] == "event_id_conflict"
        assert conn.request("status")["result"]["last_seq"] == 1


def test_expected_version_mismatch_reports_current_version(daemon: DaemonProcess) -> None:
    """A wrong expected_version gives version_conflict with current_version."""
    with daemon.connect() as conn:
        assert conn.request("append", expected_version=0, **event(1))["ok"]
        response = conn.request("append", expected_version=0, **event(2))
        assert response["error"]["code"] == "version_conflict"
        assert response["error"]["current_version"] == 1
        assert conn.request("append", expected_version=1, **event(3))["ok"]


def test_invalid_value_names_the_offending_field(daemon: DaemonProcess) -> None:
    """Data Convex cannot store is invalid_value, and nothing is appended."""
    with daemon.connect() as conn:
        response = conn.request("append", stream="s", type="T", data={"$bad": 1})
        assert response["error"]["code"] == "invalid_value"
        assert "$bad" in response["error"]["message"]
        assert conn.request("status")["result"]["last_seq"] == 0


def test_append_batch_is_all_or_nothing(daemon: DaemonProcess) -> None:
    """A batch with one invalid event appends none; a valid batch appends all, in order."""
    with daemon.connect() as conn:
        bad = conn.request(
            "append_batch", events=[event(1), {"stream": "s", "type": "bad type!", "data": {}}]
        )
        assert bad["ok"] is False
        assert bad["error"]["code"] == "invalid_value"
        assert conn.request("status")["result"]["last_seq"] == 0
        good = conn.request("append_batch", events=[event(i) for i in range(5)])["result"]
    assert [r["seq"] for r in good["results"]] == [1, 2, 3, 4, 5]


def test_read_returns_events_after_from_seq_with_a_cursor(daemon: DaemonProcess) -> None:
    """read pages through the log: events with seq > from_seq, last_seq continues the scan."""
    with daemon.connect() as conn:
        conn.request("append_batch", events=[event(i) for i in range(10)])
        page = conn.request("read", from_seq=3, limit=4)["result"]
        assert [e["seq"] for e in page["events"]] == [4, 5, 6, 7]
        assert page["last_seq"] == 7
        rest = conn.request("read", from_seq=page["last_seq"], limit=100)["result"]
        assert [e["seq"] for e in rest["events"]] == [8, 9, 10]
        assert rest["last_seq"] == 10
        empty = conn.request("read", from_seq=10)["result"]
        assert empty == {"events": [], "last_seq": 10}


def test_read_events_carry_every_contract_field(daemon: DaemonProcess) -> None:
    """Events read back hold seq, event_id, stream, version, type, data, meta, recorded_at,
    occurred_at, origin and hash."""
    with daemon.connect() as conn:
        conn.request("append", meta={"tool": "t"}, **event(1))
        stored = conn.request("read")["result"]["events"][0]
    assert set(stored) == {
        "seq", "event_id", "stream", "version", "type", "data", "meta",
        "recorded_at", "occurred_at", "origin", "hash",
    }  # fmt: skip
    assert stored["meta"] == {"tool": "t"}
    assert stored["data"] == {"i": 1}


def test_read_filters_by_stream_and_types(daemon: DaemonProcess) -> None:
    """read with stream/types returns only matching events; the cursor still covers the scan."""
    with daemon.connect() as conn:
        conn.request(
            "append_batch",
            events=[
                {"stream": "a", "type": "X", "data": {}},
                {"stream": "b", "type": "X", "data": {}},
                {"stream": "a", "type": "Y", "data": {}},
            ],
        )
        by_stream = conn.request("read", stream="a")["result"]
        by_type = conn.request("read", types=["X"])["result"]
    assert [e["seq"] for e in by_stream["events"]] == [1, 3]
    assert [e["seq"] for e in by_type["events"]] == [1, 2]
    assert by_type["last_seq"] == 3


def test_read_refuses_a_negative_from_seq_and_a_huge_limit(daemon: DaemonProcess) -> None:
    """Out-of-range read parameters are bad_request."""
    with daemon.connect() as conn:
        assert conn.request("read", from_seq=-1)["error"]["code"] == "bad_request"
        assert conn.request("read", limit=0)["error"]["code"] == "bad_request"
        assert conn.request("read", limit=10**6)["error"]["code"] == "bad_request"


def test_query_returns_view_rows(daemon: DaemonProcess) -> None:
    """query answers a view's rows, filtered by equality."""
    with daemon.connect() as conn:
        for build in ("b1", "b2"):
            conn.request(
                "append",
                stream=f"build:{build}",
                type="BuildStarted",
                data={"build_id": build, "prd_id": "p", "prd_name": "n"},
            )
        rows = conn.request("query", view="builds", filter={"build_id": "b2"})["result"]["rows"]
        everything = conn.request("query", view="builds", order="desc")["result"]["rows"]
    assert [r["build_id"] for r in rows] == ["b2"]
    assert rows[0]["status"] == "running"
    assert len(everything) == 2


def test_query_of_an_unknown_view_is_refused(daemon: DaemonProcess) -> None:
    """An unknown view name is a failure with a message naming it."""
    response = daemon.request("query", view="nope")
    assert response["ok"] is False
    assert response["error"]["code"] in ("bad_request", "invalid_value")
    assert "nope" in response["error"]["message"]


def test_status_has_every_contract_field(daemon: DaemonProcess) -> None:
    """status holds origin, last_seq, events, streams, sync.*, projections, db_bytes, uptime_s."""
    with daemon.connect() as conn:
        conn.request("append_batch", events=[event(1, "a"), event(2, "b")])
        status = conn.request("status")["result"]
    assert status["last_seq"] == 2
    assert status["events"] == 2
    assert status["streams"] == 2
    assert status["db_bytes"] > 0
    assert status["uptime_s"] >= 0
    assert uuid.UUID(status["origin"])
    assert set(status["sync"]) >= {
        "state", "acked_seq", "pending", "oldest_pending_ms", "rejected",
        "last_error", "next_attempt_ms",
    }  # fmt: skip
    assert status["sync"]["state"] == "disabled"
    assert status["sync"]["pending"] == 2
    names = {p["name"] for p in status["projections"]}
    assert names == set(builtin_packs().view_names)
    assert all(set(p) >= {"name", "version", "checkpoint"} for p in status["projections"])


def test_sync_now_says_sync_is_disabled(daemon: DaemonProcess) -> None:
    """Without CONVEX_URL, sync_now answers triggered=false with the reason."""
    result = daemon.request("sync_now")["result"]
    assert result["triggered"] is False
    assert "disabled" in result["reason"]


def _same_keys_in_order(sent: Any, typed: msgspec.Struct) -> None:
    """``typed`` (decoded from ``sent``) encodes back to exactly the keys sent, in order."""
    again = msgspec.to_builtins(typed)
    assert list(again) == list(sent)
    for key, value in sent.items():
        if isinstance(value, dict) and isinstance(getattr(typed, key), msgspec.Struct):
            _same_keys_in_order(value, getattr(typed, key))


def test_status_sync_now_read_and_query_answers_are_the_wire_structs(
    daemon: DaemonProcess,
) -> None:
    """The answers decode strictly into their atlasd.wire Structs, which encode back to the
    very keys the daemon sent, in its order: one shape on both sides of the socket."""
    with daemon.connect() as conn:
        conn.request("append", **event(1))
        answers: list[tuple[dict[str, Any], type[Any]]] = [
            (conn.request("status")["result"], wire.StatusReport),
            (conn.request("sync_now", wait=True)["result"], wire.SyncNowResult),
            (conn.request("read")["result"], wire.ReadResult[Event]),
            (conn.request("query", view="builds")["result"], wire.QueryPage),
        ]
    for sent, struct in answers:
        typed = msgspec.convert(sent, struct)
        _same_keys_in_order(sent, typed)


def test_pipelined_requests_are_answered_in_order(daemon: DaemonProcess) -> None:
    """Many requests sent before reading come back one per line, in order."""
    with daemon.connect() as conn:
        lines = []
        for i in range(300):
            op = ("append", "ping", "read", "status")[i % 4]
            body = event(i) if op == "append" else {}
            lines.append(json.dumps({"op": op, "id": i, **body}).encode() + b"\n")
        conn.send(b"".join(lines))
        responses = [conn.recv() for _ in range(300)]
    assert [r["id"] for r in responses] == list(range(300))
    assert all(r["ok"] for r in responses)
    seqs = [r["result"]["seq"] for r in responses if "seq" in (r.get("result") or {})]
    assert seqs == sorted(seqs) == list(range(1, 76))


def test_a_pipelined_read_sees_the_appends_before_it(daemon: DaemonProcess) -> None:
    """Within one connection's pipeline, a read reflects every earlier append."""
    with daemon.connect() as conn:
        batch = [json.dumps({"op": "append", **event(i)}).encode() + b"\n" for i in range(50)]
        conn.send(b"".join(batch) + b'{"op": "read", "id": "r", "limit": 1000}\n')
        for _ in range(50):
            conn.recv()
        read = conn.recv()
    assert read["id"] == "r"
    assert len(read["result"]["events"]) == 50


def test_pipelined_expected_versions_apply_in_send_order(daemon: DaemonProcess) -> None:
    """Pipelined appends with expected_version 0, 1, 2 ... all succeed (order kept)."""
    with daemon.connect() as conn:
        lines = [
            json.dumps({"op": "append", "expected_version": v, **event(v)}).encode() + b"\n"
            for v in range(100)
        ]
        conn.send(b"".join(lines))
        responses = [conn.recv() for _ in range(100)]
    assert all(r["ok"] for r in responses), [r for r in responses if not r["ok"]][:1]
    assert [r["result"]["version"] for r in responses] == list(range(1, 101))


def test_a_pipeline_deeper_than_the_connection_window_is_answered_in_order(
    daemon: DaemonProcess,
) -> None:
    """2,000 pipelined requests (appends, refused appends, reads) come back in order while
    the daemon stops and resumes reading the connection."""
    total = 2000
    lines = []
    for i in range(total):
        if i % 500 == 499:
            body: dict[str, object] = {"op": "read", "limit": 1}
        elif i % 7 == 3:
            body = {"op": "append", **event(i), "stream": ""}  # refused at once: invalid
        else:
            body = {"op": "append", **event(i)}
        lines.append(json.dumps({"id": i, **body}).encode() + b"\n")
    with daemon.connect() as conn:
        # a sender thread, so the client reads while it is still writing (no deadlock)
        sender = threading.Thread(target=conn.send, args=(b"".join(lines),))
        sender.start()
        responses = [conn.recv() for _ in range(total)]
        sender.join()
    assert [r["id"] for r in responses] == list(range(total))
    refused = [r["id"] for r in responses if not r["ok"]]
    assert refused == [i for i in range(total) if i % 7 == 3 and i % 500 != 499]
    seqs = [r["result"]["seq"] for r in responses if r["ok"] and "seq" in r["result"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(r["error"]["code"] == "invalid_value" for r in responses if not r["ok"])


def test_pipelined_batches_and_single_appends_commit_in_send_order(
    daemon: DaemonProcess,
) -> None:
    """Single appends never overtake an earlier append_batch of the same connection."""
    lines = []
    for i in range(200):
        if i % 3 == 0:
            body: dict[str, object] = {"op": "append_batch", "events": [event(i), event(i)]}
        else:
            body = {"op": "append", **event(i)}
        lines.append(json.dumps({"id": i, **body}).encode() + b"\n")
    with daemon.connect() as conn:
        conn.send(b"".join(lines))
        responses = [conn.recv() for _ in range(200)]
    assert all(r["ok"] for r in responses)
    seqs: list[int] = []
    for r in responses:
        results = r["result"]["results"] if "results" in r["result"] else [r["result"]]
        seqs.extend(result["seq"] for result in results)
    assert seqs == list(range(1, len(seqs) + 1))
