"""UUIDv7 generation and client id checks."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from atlasd.errors import InvalidValue
from atlasd.events.ids import (
    canonical_event_id,
    new_event_id,
    new_event_ids,
    new_event_ids_and_bytes,
)


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


def test_a_spent_millisecond_borrows_the_next_from_counter_zero() -> None:
    """Within one call each id is the last one's counter plus one, or, once 4096
    values are spent, the next millisecond at counter 0."""
    ids = [uuid.UUID(i).int for i in new_event_ids(9000)]
    for before, after in itertools.pairwise(ids):
        ms, counter = before >> 80, (before >> 64) & 0xFFF
        step = (after >> 80, (after >> 64) & 0xFFF)
        assert step in ((ms, counter + 1), (ms + 1, 0))
    assert len({i >> 80 for i in ids}) >= 2


def test_a_new_millisecond_starts_its_counter_below_64() -> None:
    """The first id of a millisecond takes a random counter below 64 (RFC 9562 method 1),
    whether made alone or in a batch."""
    starts = set()
    for make in (new_event_ids, lambda n: [new_event_id()]) * 20:
        # past the last id's millisecond, which may run ahead of the clock
        last_ms = uuid.UUID(new_event_id()).int >> 80
        while time.time_ns() // 1_000_000 <= last_ms:
            time.sleep(0.001)
        counter = (uuid.UUID(make(3)[0]).int >> 64) & 0xFFF
        assert counter < 64
        starts.add(counter)
    assert len(starts) > 1


def test_ids_come_with_their_stored_bytes() -> None:
    """Each id's bytes are its 16 UUID bytes, and the ids are made as new_event_ids makes
    them: increasing, version 7, RFC variant."""
    for count in (0, 1, 2, 700):
        ids, raw = new_event_ids_and_bytes(count)
        assert len(ids) == len(raw) == count
        assert raw == [uuid.UUID(i).bytes for i in ids]
        assert ids == sorted(ids)
        assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in ids)


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
