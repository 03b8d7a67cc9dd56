"""Cutting the backlog into batches bounded by count and by encoded bytes."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlasd.sync.batching import BatchBuffer, Row, split_in_halves, take_batch


def _rows(sizes: list[int], start: int = 1) -> list[Row]:
    return [(start + i, b"x" * size) for i, size in enumerate(sizes)]


def test_batches_stop_at_the_event_count() -> None:
    """Ten small events with max 4 per batch go as 4, 4, 2."""
    rows = deque(_rows([10] * 10))
    sizes = []
    while batch := take_batch(rows, 4, 10_000):
        sizes.append(len(batch))
    assert sizes == [4, 4, 2]


def test_batches_stop_before_the_byte_limit() -> None:
    """Events of 100 bytes (+1 separator) under a 350-byte limit go three at a time."""
    rows = deque(_rows([100] * 7))
    batches = []
    while batch := take_batch(rows, 100, 350):
        batches.append([seq for seq, _ in batch])
    assert batches == [[1, 2, 3], [4, 5, 6], [7]]


def test_an_oversized_event_goes_alone() -> None:
    """One event above the byte limit is still sent, by itself, between its neighbours."""
    rows = deque(_rows([10, 5000, 10]))
    assert [s for s, _ in take_batch(rows, 10, 100)] == [1]
    assert [s for s, _ in take_batch(rows, 10, 100)] == [2]
    assert [s for s, _ in take_batch(rows, 10, 100)] == [3]


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=60),
    max_events=st.integers(min_value=1, max_value=10),
    max_bytes=st.integers(min_value=1, max_value=1000),
)
def test_batches_cover_the_rows_in_order_within_limits(
    sizes: list[int], max_events: int, max_bytes: int
) -> None:
    """Any backlog is cut into non-empty batches, in seq order, each within both limits."""
    rows = _rows(sizes)
    pending = deque(rows)
    seen: list[Row] = []
    while batch := take_batch(pending, max_events, max_bytes):
        assert 1 <= len(batch) <= max_events
        if len(batch) > 1:
            assert sum(len(raw) + 1 for _, raw in batch) <= max_bytes
        seen.extend(batch)
    assert seen == rows


def test_halves_keep_seq_order_and_lose_nothing() -> None:
    """Splitting a refused batch gives two ordered halves that rejoin to the whole."""
    batch = _rows([1] * 5)
    first, second = split_in_halves(batch)
    assert (len(first), len(second)) == (2, 3)
    assert first + second == batch


def test_buffer_asks_for_a_refill_only_when_a_full_batch_is_not_buffered() -> None:
    """The read-ahead stays at about one batch: memory does not grow with the backlog."""
    buffer = BatchBuffer(max_events=3, max_bytes=1000)
    buffer.reset(10)
    assert buffer.needs_refill
    buffer.extend(_rows([5] * 3, start=11))
    assert not buffer.needs_refill
    assert buffer.last_seq == 13
    assert [s for s, _ in buffer.next_batch()] == [11, 12, 13]
    assert buffer.needs_refill
    assert buffer.next_batch() == []


def test_buffer_refuses_rows_out_of_seq_order() -> None:
    """A read that goes backwards is a bug, caught before anything is sent twice."""
    buffer = BatchBuffer(max_events=3, max_bytes=1000)
    buffer.reset(5)
    with pytest.raises(ValueError, match="out of order"):
        buffer.extend(_rows([1], start=5))
