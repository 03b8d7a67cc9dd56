"""Cutting the backlog into ingest batches bounded by count and by encoded bytes.

The worker reads ``(seq, encoded event JSON)`` rows in bounded chunks and asks
:class:`BatchBuffer` for the next batch: at most ``max_events`` events and at
most ``max_bytes`` of event JSON (plus separators), always at least one event,
so an event larger than ``max_bytes`` alone still goes alone. Refills read
at most :attr:`BatchBuffer.room` bytes, so the buffer holds at most one
batch plus one event: memory stays within about two batches (the buffer and
the batch in flight) whatever the backlog's size or its events' sizes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

__all__ = ["BatchBuffer", "Row", "split_in_halves", "take_batch"]

#: One backlog row: (seq, the event encoded as JSON).
Row = tuple[int, bytes]

# Bytes added per event by the request body around it: the comma separator.
_SEPARATOR = 1


def take_batch(rows: deque[Row], max_events: int, max_bytes: int) -> list[Row]:
    """Pop the longest prefix of ``rows`` within both limits (never empty if rows is not)."""
    batch: list[Row] = []
    size = 0
    while rows and len(batch) < max_events:
        cost = len(rows[0][1]) + _SEPARATOR
        if batch and size + cost > max_bytes:
            break
        batch.append(rows.popleft())
        size += cost
    return batch


def split_in_halves(batch: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """The two halves of a refused batch, in seq order (the first gets the smaller)."""
    middle = len(batch) // 2
    return list(batch[:middle]), list(batch[middle:])


class BatchBuffer:
    """Rows read ahead from the store, handed out as batches.

    ``needs_refill`` says when the buffered rows may not make a full batch
    any more, so the caller reads the next chunk after :attr:`last_seq`.
    """

    def __init__(self, max_events: int, max_bytes: int) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("batches need max_events >= 1 and max_bytes >= 1")
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._rows: deque[Row] = deque()
        self._bytes = 0
        #: Highest seq ever buffered (the next read starts after it).
        self.last_seq = 0

    def __len__(self) -> int:
        return len(self._rows)

    def reset(self, after_seq: int) -> None:
        """Drop everything buffered; the next read starts after ``after_seq``."""
        self._rows.clear()
        self._bytes = 0
        self.last_seq = after_seq

    @property
    def needs_refill(self) -> bool:
        return len(self._rows) < self.max_events and self._bytes < self.max_bytes

    @property
    def room(self) -> int:
        """Event bytes a refill may add: up to one full batch buffered (at least 1, as a
        read returns one event even past its budget)."""
        return max(1, self.max_bytes - self._bytes)

    def extend(self, rows: Sequence[Row]) -> None:
        for row in rows:
            if row[0] <= self.last_seq:
                raise ValueError(f"rows out of order: seq {row[0]} after {self.last_seq}")
            self._rows.append(row)
            self._bytes += len(row[1]) + _SEPARATOR
            self.last_seq = row[0]

    def next_batch(self) -> list[Row]:
        batch = take_batch(self._rows, self.max_events, self.max_bytes)
        self._bytes -= sum(len(raw) + _SEPARATOR for _, raw in batch)
        return batch
