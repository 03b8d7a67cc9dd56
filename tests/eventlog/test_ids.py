"""UUIDv7 generation and client id checks."""

from __future__ import annotations

import time
import uuid

import pytest

from atlasd.errors import InvalidValue
from atlasd.events.ids import canonical_event_id, new_event_id, new_event_ids


def test_new_ids_are_increasing_unique_uuid7() -> None:
    """Ids made singly and in batches are distinct, increasing, version 7, RFC variant."""
    before = time.time_ns() // 1_000_000
    ids = [new_event_id() for _ in range(3000)] + new_event_ids(5000) + [new_event_id()]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == event_id
    # the first 48 bits are the ms timestamp (it may run a little ahead when a
    # millisecond's 4096 counter values are spent)
    first_ms = uuid.UUID(ids[0]).int >> 80
    assert before <= first_ms <= time.time_ns() // 1_000_000 + 10


def test_random_bits_vary() -> None:
    """The 62 random bits differ between ids of the same millisecond."""
    ids = new_event_ids(2000)
    tails = {uuid.UUID(i).int & ((1 << 62) - 1) for i in ids}
    assert len(tails) == len(ids)
    assert {i[19] for i in ids} == set("89ab")


def test_zero_ids() -> None:
    """Asking for no ids gives none."""
    assert new_event_ids(0) == []


def test_client_ids_are_lowercased_and_checked() -> None:
    """Any-case canonical UUIDs are accepted in lowercase; other forms are refused."""
    assert canonical_event_id("0190ABCD-0000-7000-8000-00000000000F") == (
        "0190abcd-0000-7000-8000-00000000000f"
    )
    for bad in (
        "0190abcd00007000800000000000000f",
        "urn:uuid:0190abcd-0000-7000-8000-00000000000f",
        5,
    ):
        with pytest.raises(InvalidValue):
            canonical_event_id(bad)
