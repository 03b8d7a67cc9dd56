"""Spool ingestion, one file at a time: atomic batches, rejection, idempotency."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from atlasd.client.spool import write_spool_file
from atlasd.daemon.spool import (
    CHUNK_EVENTS,
    SpoolFileError,
    SpoolOutcome,
    ingest_file,
    ingest_pending,
    iter_spool_chunks,
    parse_spool_file,
    scan_spool_file,
)
from atlasd.errors import InvalidValue
from atlasd.eventlog import EventStore
from atlasd.events import NewEvent
from atlasd.events.ids import derive_event_id, new_event_id


def _line(stream: str = "tool:a", type_: str = "Did", **extra: Any) -> dict[str, Any]:
    return {"stream": stream, "type": type_, "data": {"n": extra.pop("n", 0)}, **extra}


def _drop(spool_dir: Path, name: str, lines: list[Any] | bytes) -> Path:
    """Write a file as a tool would: temporary name, then rename."""
    body = (
        lines
        if isinstance(lines, bytes)
        else b"".join(
            (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n"
            for line in lines
        )
    )
    temp = spool_dir / f".tmp-{name}.part"
    temp.write_bytes(body)
    final = spool_dir / name
    os.replace(temp, final)
    return final


async def _all_events(store: EventStore) -> list[Any]:
    return await store.read(0, limit=10_000)


async def test_a_file_is_appended_in_order_and_then_removed(
    store: EventStore, spool_dir: Path
) -> None:
    """Every event of a file is appended in line order, and the file is deleted after."""
    ids = [new_event_id() for _ in range(3)]
    path = _drop(spool_dir, "a.ndjson", [_line(n=i, event_id=ids[i]) for i in range(3)])
    report = await ingest_file(store, path)
    assert report.outcome is SpoolOutcome.INGESTED
    assert (report.events, report.duplicates) == (3, 0)
    events = await _all_events(store)
    assert [e.event_id for e in events] == ids
    assert [e.data["n"] for e in events] == [0, 1, 2]
    assert not path.exists()


async def test_files_are_ingested_oldest_name_first(store: EventStore, spool_dir: Path) -> None:
    """Several waiting files go in name order (names sort by creation time)."""
    for name in ("0003.ndjson", "0001.ndjson", "0002.ndjson"):
        _drop(spool_dir, name, [_line(stream=f"s:{name}")])
    reports = await ingest_pending(store, spool_dir)
    assert [r.name for r in reports] == ["0001.ndjson", "0002.ndjson", "0003.ndjson"]
    streams = [e.stream for e in await _all_events(store)]
    assert streams == ["s:0001.ndjson", "s:0002.ndjson", "s:0003.ndjson"]


async def test_temporary_and_foreign_names_are_left_alone(
    store: EventStore, spool_dir: Path
) -> None:
    """A file still being written (temp name) or not named *.ndjson is never read."""
    partial = spool_dir / ".tmp-123.part"
    partial.write_bytes(b'{"stream": "s:1", "type": "T", "da')
    other = spool_dir / "notes.txt"
    other.write_text("hello")
    assert await ingest_pending(store, spool_dir) == []
    assert partial.read_bytes().endswith(b'"da')
    assert other.exists()
    assert store.last_seq == 0
    assert not (spool_dir / "rejected").exists() or not any((spool_dir / "rejected").iterdir())


@pytest.mark.parametrize(
    ("body", "reason_code"),
    [
        pytest.param(
            b'{"stream": "s:1", "type": "T", "data": {}}\n{not json\n',
            "bad_request",
            id="invalid-json",
        ),
        pytest.param(
            b'{"stream": "s:1", "type": "T", "data": {}}\n{"stream": "s:2"}\n',
            "bad_request",
            id="missing-fields",
        ),
        pytest.param(
            b'{"stream": "s:1", "type": "T", "data": {}, "extra": 1}\n',
            "bad_request",
            id="unknown-field",
        ),
        pytest.param(
            b'{"stream": "s:1", "type": "T", "data": {}}\n\xff\xfe\n', "bad_request", id="not-utf8"
        ),
        pytest.param(
            b'{"stream": "s:1", "type": "T", "data": {}}\n'
            b'{"stream": "s:2", "type": "T", "data": {"$ref": 1}}\n',
            "invalid_value",
            id="convex-invalid-field-name",
        ),
        pytest.param(
            b'{"stream": "s:1", "type": "bad type!", "data": {}}\n',
            "invalid_value",
            id="invalid-type-name",
        ),
        pytest.param(
            b'{"stream": "s:1", "type": "T", "data": {}, "event_id": "nope"}\n',
            "invalid_value",
            id="invalid-event-id",
        ),
    ],
)
async def test_a_bad_file_is_rejected_intact_and_nothing_of_it_applied(
    store: EventStore, spool_dir: Path, body: bytes, reason_code: str
) -> None:
    """A bad file moves byte-for-byte to rejected/ with a reason; not one event is appended."""
    path = _drop(spool_dir, "bad.ndjson", body)
    report = await ingest_file(store, path)
    assert report.outcome is SpoolOutcome.REJECTED
    assert not path.exists()
    rejected = spool_dir / "rejected" / "bad.ndjson"
    assert rejected.read_bytes() == body
    reason = (spool_dir / "rejected" / "bad.ndjson.reason").read_text()
    assert reason.startswith(reason_code), reason
    assert store.last_seq == 0


async def test_an_event_id_conflict_rejects_the_whole_file(
    store: EventStore, spool_dir: Path
) -> None:
    """A file reusing a stored event id with other content is refused as a whole."""
    taken = new_event_id()
    await store.append(NewEvent(stream="s:1", type="T", data={"v": 1}, event_id=taken))
    path = _drop(
        spool_dir,
        "conflict.ndjson",
        [_line(event_id=new_event_id()), _line(n=9, event_id=taken)],
    )
    report = await ingest_file(store, path)
    assert report.outcome is SpoolOutcome.REJECTED
    assert "event_id_conflict" in (spool_dir / "rejected" / "conflict.ndjson.reason").read_text()
    assert store.last_seq == 1


async def test_expected_version_in_a_file_is_checked_and_a_mismatch_rejects_it(
    store: EventStore, spool_dir: Path
) -> None:
    """A spooled event may carry expected_version; a mismatch rejects the whole file."""
    path = _drop(spool_dir, "v.ndjson", [_line(stream="s:v", expected_version=3)])
    report = await ingest_file(store, path)
    assert report.outcome is SpoolOutcome.REJECTED
    assert "version_conflict" in (spool_dir / "rejected" / "v.ndjson.reason").read_text()
    assert store.last_seq == 0


async def test_a_rejected_name_is_never_overwritten(store: EventStore, spool_dir: Path) -> None:
    """Two bad files of the same name both stay in rejected/, each with its reason."""
    _drop(spool_dir, "same.ndjson", b"first\n")
    await ingest_pending(store, spool_dir)
    _drop(spool_dir, "same.ndjson", b"second\n")
    await ingest_pending(store, spool_dir)
    rejected = spool_dir / "rejected"
    assert (rejected / "same.ndjson").read_bytes() == b"first\n"
    assert (rejected / "same.ndjson.1").read_bytes() == b"second\n"
    assert (rejected / "same.ndjson.1.reason").exists()


async def test_a_crash_between_commit_and_delete_reingests_without_duplicates(
    store: EventStore, spool_dir: Path
) -> None:
    """Restoring an ingested file (as a crash before its removal would) appends nothing new."""
    lines = [_line(n=i, event_id=new_event_id()) for i in range(5)]
    lines += [_line(n=100 + i) for i in range(5)]  # ids derived from the file
    path = _drop(spool_dir, "crash.ndjson", lines)
    content = path.read_bytes()
    first = await ingest_file(store, path)
    assert (first.events, first.duplicates) == (10, 0)
    path.write_bytes(content)  # the file as it was when the daemon died
    second = await ingest_file(store, path)
    assert second.outcome is SpoolOutcome.INGESTED
    assert (second.events, second.duplicates) == (10, 10)
    events = await _all_events(store)
    assert len(events) == 10
    assert len({e.event_id for e in events}) == 10


def test_derived_ids_depend_on_the_file_name_content_and_line(spool_dir: Path) -> None:
    """Events without ids get ids from name, bytes and line: two files with equal bytes differ."""
    a = _drop(spool_dir, "a.ndjson", [_line(n=1), _line(n=2)])
    b = _drop(spool_dir, "b.ndjson", [_line(n=1), _line(n=2)])
    c = _drop(spool_dir, "c.ndjson", [_line(n=1), _line(n=3)])
    ids_a = [e.event_id for e in parse_spool_file(a)]
    assert ids_a == [e.event_id for e in parse_spool_file(a)]  # the same file: the same ids
    assert set(ids_a).isdisjoint(e.event_id for e in parse_spool_file(b))
    assert ids_a[0] != ids_a[1]
    assert set(ids_a).isdisjoint(e.event_id for e in parse_spool_file(c))
    digest = __import__("hashlib").sha256(a.read_bytes()).hexdigest()
    assert ids_a[0] == derive_event_id(digest, 1, "a.ndjson")


async def test_an_empty_file_is_removed_without_appending(
    store: EventStore, spool_dir: Path
) -> None:
    """A file with no events (only blank lines) is consumed and appends nothing."""
    path = _drop(spool_dir, "empty.ndjson", b"\n\n")
    report = await ingest_file(store, path)
    assert (report.outcome, report.events) == (SpoolOutcome.INGESTED, 0)
    assert not path.exists()
    assert store.last_seq == 0


async def test_a_file_waits_while_the_store_is_unavailable(
    store: EventStore, spool_dir: Path
) -> None:
    """When the store cannot take the batch now, the file stays for the next scan."""
    path = _drop(spool_dir, "later.ndjson", [_line(event_id=new_event_id())])
    await store.close()
    report = await ingest_file(store, path)
    assert report.outcome is SpoolOutcome.DEFERRED
    assert path.exists()
    assert not (spool_dir / "rejected" / "later.ndjson").exists()


def test_the_client_writer_leaves_only_complete_group_readable_files(spool_dir: Path) -> None:
    """write_spool_file renames a complete file into place, mode 0640, parseable back."""
    events = [
        NewEvent(stream="s:1", type="T", data={"i": i}, event_id=new_event_id()) for i in range(3)
    ]
    path = write_spool_file(spool_dir, events)
    assert path.name.endswith(".ndjson")
    assert [p.name for p in spool_dir.iterdir()] == [path.name]  # no temp file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    parsed = parse_spool_file(path)
    assert [(e.event_id, e.data) for e in parsed] == [(e.event_id, e.data) for e in events]


def test_the_client_writer_spools_a_protocol_request_as_a_plain_event(spool_dir: Path) -> None:
    """An `append` request given as the event is spooled without its op and id fields."""
    from atlasd import wire

    request = wire.Append(id=3, stream="s", type="T", data={"a": 1}, event_id=new_event_id())
    path = write_spool_file(spool_dir, [request])
    assert b'"op"' not in path.read_bytes()
    assert [(e.event_id, e.data) for e in parse_spool_file(path)] == [(request.event_id, {"a": 1})]


def test_the_client_writer_refuses_what_it_cannot_spool_safely(spool_dir: Path) -> None:
    """No event id (re-ingest could duplicate) or an expected_version: refused, nothing written."""
    with pytest.raises(InvalidValue, match="event_id"):
        write_spool_file(spool_dir, [NewEvent(stream="s", type="T", data={})])
    with pytest.raises(InvalidValue, match="expected_version"):
        write_spool_file(
            spool_dir,
            [NewEvent(stream="s", type="T", data={}, event_id=new_event_id(), expected_version=1)],
        )
    assert list(spool_dir.iterdir()) == []


async def test_an_invalid_event_after_the_first_chunk_rejects_the_whole_file(
    store: EventStore, spool_dir: Path
) -> None:
    """An event the store refuses late in a file rolls back the chunks already handed over."""
    count = CHUNK_EVENTS * 2 + 10
    lines = [_line(n=i) for i in range(count)]
    lines[-5]["stream"] = ""  # well-formed JSON, refused only by the store's validation
    path = _drop(spool_dir, "late.ndjson", lines)
    body = path.read_bytes()
    report = await ingest_file(store, path)
    assert report.outcome is SpoolOutcome.REJECTED
    assert report.reason is not None
    assert report.reason.startswith("invalid_value")
    assert store.last_seq == 0
    assert await _all_events(store) == []
    assert (spool_dir / "rejected" / "late.ndjson").read_bytes() == body


def test_the_second_pass_yields_bounded_chunks_of_every_event(spool_dir: Path) -> None:
    """Events come back in line order, at most chunk_events at a time, with derived ids."""
    lines = [_line(n=i) for i in range(25)]
    path = _drop(spool_dir, "c.ndjson", [*lines[:10], b"", *lines[10:]])
    scan = scan_spool_file(path)
    assert scan.events == 25
    chunks = list(iter_spool_chunks(path, scan, chunk_events=10))
    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    events = [event for chunk in chunks for event in chunk]
    assert [e.data["n"] for e in events] == list(range(25))
    # line 11 is blank: the event after it is on line 12
    assert events[10].event_id == derive_event_id(scan.digest, 12, "c.ndjson")


async def test_a_file_changed_between_the_passes_commits_nothing(
    store: EventStore, spool_dir: Path
) -> None:
    """If the file is not what the first pass read, the stream fails and rolls back."""
    path = _drop(spool_dir, "m.ndjson", [_line(n=i) for i in range(30)])
    scan = scan_spool_file(path)
    with path.open("ab") as f:
        f.write(json.dumps(_line(n=99)).encode() + b"\n")
    with pytest.raises(SpoolFileError, match="changed"):
        await store.append_stream(iter_spool_chunks(path, scan, chunk_events=10))
    assert store.last_seq == 0
