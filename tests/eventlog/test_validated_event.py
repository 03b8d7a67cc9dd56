"""What validate_new_event returns behaves as a NewEvent: it compares, copies, pickles and
encodes as the NewEvent with the same fields does."""

from __future__ import annotations

import copy
import gc
import pickle
import sys

import msgspec

from atlasd.events import NewEvent, validate_new_event


def plain() -> NewEvent:
    """An event validation leaves as it is (meta given, values already plain)."""
    return NewEvent(stream="s", type="T", data={"a": [1, {"b": None}]}, meta={}, occurred_at=5)


def test_a_validated_event_equals_the_new_event_it_came_from() -> None:
    """An event that needed no change compares equal to itself after validation, both ways."""
    event = plain()
    valid = validate_new_event(event)
    assert valid == event
    assert event == valid
    assert (valid != event, event != valid) == (False, False)
    other = NewEvent(stream="s", type="T", data={"a": [2]}, meta={}, occurred_at=5)
    assert valid != other
    assert other != valid
    assert (valid == other) is False


def test_a_validated_event_copies_pickles_and_replaces_as_a_new_event() -> None:
    """replace, copy, deepcopy and a pickle round trip keep its fields and its encoding."""
    valid = validate_new_event(plain())
    for other in (
        msgspec.structs.replace(valid),
        copy.copy(valid),
        copy.deepcopy(valid),
        pickle.loads(pickle.dumps(valid)),
    ):
        assert msgspec.structs.asdict(other) == msgspec.structs.asdict(valid)
        assert msgspec.json.encode(other) == msgspec.json.encode(plain())
        assert msgspec.msgpack.encode(other) == msgspec.msgpack.encode(plain())
    changed = msgspec.structs.replace(valid, stream="t")
    assert changed.stream == "t"
    assert isinstance(changed, NewEvent)


def test_validated_events_dropped_free_what_they_held_without_the_collector() -> None:
    """Validated events, untracked by the cycle collector, are freed by reference counts
    alone: once dropped, the data they held is referenced as before."""
    data = {"a": [1, {"b": "c"}]}
    gc.disable()
    try:
        before = sys.getrefcount(data)
        held = [validate_new_event(NewEvent(stream="s", type="T", data=data)) for _ in range(500)]
        assert not any(gc.is_tracked(v) for v in held)
        del held
        assert sys.getrefcount(data) == before
    finally:
        gc.enable()
