"""Append-time validation: every Convex rule, with the offending path in the message."""

from __future__ import annotations

import enum
import gc
import re
from typing import Any

import msgspec
import pytest

from atlasd.errors import InvalidValue
from atlasd.eventlog import EventStore, NewEvent
from atlasd.events.validation import (
    MAX_EVENT_BYTES,
    MAX_VALUE_DEPTH,
    check_stream,
    check_type,
    check_value,
    validate_new_event,
)


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep (itself counted): {"a": {"a": ... {}}}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"steps": [0, 1, 2, {"$ref": 1}]}, "data.steps[3].$ref"),
        ({"": 1}, "data.''"),
        ({"a\nb": 1}, "data.a\nb"),
        ({"caf\u00e9": 1}, "data.caf\u00e9"),
        ({"x" * 1025: 1}, "data." + "x" * 61 + "..."),
        ({"n": 2**53 + 1}, "data.n"),
        ({"n": -(2**53) - 1}, "data.n"),
        ({"f": float("nan")}, "data.f"),
        ({"f": float("inf")}, "data.f"),
        ({"list": list(range(8193))}, "data.list"),
        ({"obj": {f"k{i}": i for i in range(1025)}}, "data.obj"),
        ({"b": b"bytes"}, "data.b"),
        ({"s": {1, 2}}, "data.s"),
        ({"deep": [[{"x": {1: 2}}]]}, "data.deep[0][0].x"),
    ],
)
def test_invalid_values_are_refused_with_their_path(data: dict[str, Any], path: str) -> None:
    """Each Convex rule refuses the value and names where it is."""
    with pytest.raises(InvalidValue) as info:
        check_value(data, "data")
    assert info.value.message.startswith(path + ":"), info.value.message


@pytest.mark.parametrize(
    "data",
    [
        {"n": 2**53, "m": -(2**53), "f": 1.5, "t": True, "z": None, "s": "\u00e9\u0000"},
        {" ~!": 1, "x" * 1024: 2, "_system_like": 3, "a$": 4},
        {"list": list(range(8192))},
        {f"k{i}": i for i in range(1024)},
        {},
    ],
)
def test_values_within_the_limits_are_accepted(data: dict[str, Any]) -> None:
    """Values at the limits (2**53, 8192 items, 1024 fields, 1024-char names) pass."""
    assert check_value(data, "data") == data


def test_depth_limit_boundary() -> None:
    """data may be 15 levels deep (itself included); 16 is refused at the 16th level."""
    assert MAX_VALUE_DEPTH == 15
    check_value(nested(15), "data")
    with pytest.raises(InvalidValue) as info:
        check_value(nested(16), "data")
    assert info.value.message.startswith("data" + ".a" * 15 + ": nested deeper than 15")
    # arrays count as levels too
    value: Any = 1
    for _ in range(14):
        value = [value]
    check_value({"l": value}, "data")
    with pytest.raises(InvalidValue, match=re.escape("data.l" + "[0]" * 14)):
        check_value({"l": [value]}, "data")


def test_json_subclasses_are_normalised_to_plain_values() -> None:
    """StrEnum/IntEnum values and tuples are accepted and stored as plain JSON values."""

    class Colour(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    out = check_value({"c": Colour.RED, "l": Level.HIGH, "t": (1, 2)}, "data")
    assert out == {"c": "red", "l": 3, "t": [1, 2]}
    assert type(out["c"]) is str
    assert type(out["l"]) is int
    assert type(out["t"]) is list


@pytest.mark.parametrize("stream", ["s", "x" * 200, "build:b-42", "caf\u00e9/\u2603 space"])
def test_valid_streams(stream: str) -> None:
    """Streams of 1..200 characters without control characters are accepted."""
    assert check_stream(stream) == stream


@pytest.mark.parametrize("stream", ["", "x" * 201, "a\nb", "tab\t", "nul\x00", "c1\x85", 7])
def test_invalid_streams(stream: object) -> None:
    """Empty, too long, control characters or not a string: invalid_value naming stream."""
    with pytest.raises(InvalidValue, match=r"^stream"):
        check_stream(stream)


@pytest.mark.parametrize("event_type", ["T", "BuildStarted", "a.b:c-d_e9", "x" * 100])
def test_valid_types(event_type: str) -> None:
    """Types of 1..100 characters of [A-Za-z0-9_.:-] are accepted."""
    assert check_type(event_type) == event_type


@pytest.mark.parametrize("event_type", ["", "x" * 101, "with space", "caf\u00e9", "a/b", "T\n", 3])
def test_invalid_types(event_type: object) -> None:
    """Anything else is invalid_value naming type."""
    with pytest.raises(InvalidValue, match=r"^type"):
        check_type(event_type)


async def test_meta_is_checked_like_data(store: EventStore) -> None:
    """meta follows the same rules, and its errors say meta."""
    with pytest.raises(InvalidValue, match=r"^meta\.\$who"):
        await store.append(NewEvent(stream="s", type="T", data={}, meta={"$who": 1}))
    assert store.last_seq == 0


async def test_encoded_event_over_one_mib_is_refused(store: EventStore) -> None:
    """An event whose encoding exceeds 1 MiB is invalid_value; just under is stored."""
    with pytest.raises(InvalidValue, match="bytes encoded"):
        await store.append(NewEvent(stream="s", type="T", data={"b": "x" * MAX_EVENT_BYTES}))
    result = await store.append(
        NewEvent(stream="s", type="T", data={"b": "x" * (MAX_EVENT_BYTES - 400)})
    )
    assert result.seq == 1
    [(_, raw)] = await store.read_raw(0, 1)
    assert MAX_EVENT_BYTES - 400 < len(raw) <= MAX_EVENT_BYTES


@pytest.mark.parametrize("expected", [-1, True, "1", 1.0])
async def test_bad_expected_version_is_refused(store: EventStore, expected: object) -> None:
    """expected_version must be a non-negative integer."""
    with pytest.raises(InvalidValue, match="expected_version"):
        await store.append(NewEvent(stream="s", type="T", data={}, expected_version=expected))  # type: ignore[arg-type]


async def test_data_must_be_an_object(store: EventStore) -> None:
    """data that is not an object is refused and nothing is stored."""
    with pytest.raises(InvalidValue, match=r"^data must be an object"):
        await store.append(NewEvent(stream="s", type="T", data=[1]))  # type: ignore[arg-type]
    assert store.last_seq == 0


def test_names_accepted_before_are_still_checked_when_they_come_as_subclasses() -> None:
    """The memory of accepted strings never skips normalising a str subclass."""

    class Name(str):
        pass

    check_value({"title": 1}, "data")
    checked = check_value({Name("title"): 1}, "data")
    assert [type(key) for key in checked] == [str]
    check_type("TaskLogged")
    with pytest.raises(InvalidValue, match="type"):
        check_type(["TaskLogged"])
    check_stream("build:b1")
    with pytest.raises(InvalidValue, match="stream"):
        check_stream({"build:b1": 1})


def test_a_validated_event_is_a_new_event_the_cycle_collector_does_not_track() -> None:
    """What validation returns is a NewEvent with the same fields and encoding, left out
    of the cycle collector (it holds JSON values only), while the input stays tracked."""
    event = NewEvent(stream="s", type="T", data={"a": [1, {"b": None}]}, occurred_at=5)
    valid = validate_new_event(event)
    assert isinstance(valid, NewEvent)
    assert gc.is_tracked(event)
    assert not gc.is_tracked(valid)
    assert msgspec.json.encode(valid) == msgspec.json.encode(
        NewEvent(stream="s", type="T", data={"a": [1, {"b": None}]}, meta={}, occurred_at=5)
    )
