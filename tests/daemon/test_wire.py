"""The wire module: one decoder for the request union, responses encoded as the contract says."""

from __future__ import annotations

import json

import msgspec
import pytest

from atlasd import wire
from atlasd.errors import VersionConflict
from atlasd.events import Event, NewEvent
from atlasd.reports import CHECKING, IntegrityReport


def test_requests_round_trip_through_encode_and_decode() -> None:
    """What a client encodes, the daemon decodes to the same Struct."""
    requests: list[wire.Request] = [
        wire.Ping(id=1),
        wire.Append(id="a", stream="s", type="T", data={"x": [1, 2]}, expected_version=0),
        wire.AppendBatch(events=[wire.EventIn(stream="s", type="T", data={})]),
        wire.Read(from_seq=5, types=["T"], limit=10),
        wire.Subscribe(from_seq="end", stream="s"),
        wire.Query(view="builds", filter={"status": "running"}, order="desc"),
        wire.Watch(view="tasks"),
        wire.Status(),
        wire.SyncNow(wait=True),
    ]
    for request in requests:
        line = wire.encode_request(request)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert wire.decode_request(line) == request


def test_the_op_tag_names_the_request() -> None:
    """Encoded requests carry "op" with the contract's op name."""
    names = {
        json.loads(wire.encode_request(r))["op"]
        for r in (wire.Ping(), wire.Status(), wire.SyncNow(), wire.Subscribe())
    }
    assert names == {"ping", "status", "sync_now", "subscribe"}


def test_an_append_request_is_the_store_input_as_decoded() -> None:
    """`append` decodes to a NewEvent (plus its id) and `append_batch` to plain NewEvents."""
    single = wire.decode_request(
        b'{"op":"append","id":7,"stream":"s","type":"T","data":{"a":1},"occurred_at":5}'
    )
    assert isinstance(single, wire.Append)
    assert isinstance(single, NewEvent)
    assert (single.id, single.stream, single.data, single.occurred_at) == (7, "s", {"a": 1}, 5)
    batch = wire.decode_request(
        b'{"op":"append_batch","events":[{"stream":"s","type":"T","data":{},"meta":{"m":1}}]}'
    )
    assert isinstance(batch, wire.AppendBatch)
    assert [type(e) for e in batch.events] == [NewEvent]
    assert batch.events[0].meta == {"m": 1}


@pytest.mark.parametrize(
    "line",
    [
        b'{"op":"append","stream":"s","type":"T","data":{},"expected_verison":1}',
        b'{"op":"append","stream":"s","type":"T","data":{},"occurred_at":9223372036854775808}',
        b'{"op":"append","stream":"s","type":"T","data":[]}',
        b'{"op":"append_batch","events":[{"stream":"s","type":"T","data":{},"op":"append"}]}',
        b'{"op":"append_batch","events":[{"stream":"s","type":"T","data":{},"id":1}]}',
        b'{"op":"append_batch","events":[{"stream":"s","type":"T","expected_version":-9223372036854775808,"data":{}}]}',
    ],
)
def test_the_shared_input_struct_keeps_the_decoders_bounds(line: bytes) -> None:
    """Unknown fields, integers beyond 64 bits and a non-object `data` are refused in
    both an append and a batch item, though both are the store's own struct."""
    with pytest.raises(wire.UnreadableRequest):
        wire.decode_request(line)


@pytest.mark.parametrize(
    ("line", "request_id"),
    [
        (b'{"op": "nope", "id": 4}', 4),
        (b'{"op": "append", "id": "q"}', "q"),
        (b"[1]", None),
        (b"{", None),
        (b'{"op": "ping", "id": [1]}', None),
    ],
)
def test_unreadable_requests_raise_bad_request_with_the_id_if_any(
    line: bytes, request_id: object
) -> None:
    """Decode failures are bad_request and keep a readable scalar id."""
    with pytest.raises(wire.UnreadableRequest) as caught:
        wire.decode_request(line)
    assert caught.value.code == "bad_request"
    assert caught.value.request_id == request_id


def test_response_lines_match_the_contract_shapes() -> None:
    """Success, failure, event and rows lines, each one JSON line."""
    ok = json.loads(wire.encode_ok(7, {"events": [msgspec.Raw(b'{"seq":1}')]}))
    assert ok == {"id": 7, "ok": True, "result": {"events": [{"seq": 1}]}}
    error = json.loads(wire.encode_error(8, VersionConflict("no", current_version=3)))
    assert error == {
        "id": 8,
        "ok": False,
        "error": {"code": "version_conflict", "message": "no", "current_version": 3},
    }
    assert json.loads(wire.encode_event_line("s", msgspec.Raw(b'{"seq":2}'))) == {
        "id": "s",
        "event": {"seq": 2},
    }
    assert json.loads(wire.encode_rows_line(None, [])) == {"id": None, "rows": []}


def test_clients_decode_every_response_kind() -> None:
    """decode_response reads success, failure and stream lines."""
    assert wire.decode_response(b'{"id":1,"ok":true,"result":{"a":1}}').result == {"a": 1}
    failure = wire.decode_response(b'{"id":1,"ok":false,"error":{"code":"internal"}}')
    assert failure.ok is False
    assert failure.error == {"code": "internal"}
    assert wire.decode_response(b'{"id":2,"rows":[]}').rows == []


def test_the_integrity_check_still_running_is_sent_as_its_state_alone() -> None:
    """``status.integrity`` reads ``{"state": "checking"}`` until the page check reports;
    a finished report carries its problems and time, and clients decode both."""
    assert msgspec.json.encode(CHECKING) == b'{"state":"checking"}'
    done = msgspec.json.encode(IntegrityReport(state="ok", ms=1.5))
    assert done == b'{"state":"ok","problems":[],"ms":1.5}'
    for line in (msgspec.json.encode(CHECKING), done):
        assert msgspec.json.decode(line, type=IntegrityReport).state in ("checking", "ok")


def test_answer_fields_out_of_range_are_refused_when_decoded() -> None:
    """The bounds stated once on the answer structs hold for clients too: a negative
    count or seq in a ``sync_now`` or ``read`` answer is a decode error, not a value."""
    with pytest.raises(msgspec.ValidationError, match="pending"):
        msgspec.convert(
            {
                "state": "idle", "acked_seq": 0, "pending": -1, "oldest_pending_ms": None,
                "rejected": 0, "last_error": None, "next_attempt_ms": None,
            },
            wire.SyncStatus,
        )  # fmt: skip
    with pytest.raises(msgspec.ValidationError, match="last_seq"):
        msgspec.convert({"events": [], "last_seq": -3}, wire.ReadResult[Event])
    with pytest.raises(msgspec.ValidationError, match="state"):
        msgspec.convert({"triggered": True, "state": "asleep"}, wire.SyncNowResult)
