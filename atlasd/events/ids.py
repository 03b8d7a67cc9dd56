"""Event ids: new UUIDv7s (RFC 9562; the stdlib has none before 3.14), client ids checked,
and the ids derived for events read from a file that carries none."""

from __future__ import annotations

import os
import re
import struct
import threading
import time
import uuid

from atlasd.errors import InvalidValue

__all__ = [
    "canonical_event_id",
    "derive_event_id",
    "new_event_id",
    "new_event_ids",
    "new_event_ids_and_bytes",
]

_HEX = "[0-9a-fA-F]"
_CANONICAL = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")

#: Namespace of derived event ids; fixed forever so derivations stay stable.
_ID_NAMESPACE = uuid.UUID("5b0c7f4e-3c1a-4f59-9d4e-8a6f2c1b7d20")

_lock = threading.Lock()
_last_ms = 0
_counter = 0

# the first byte of the variant group: RFC 9562's variant (binary 10) over 6 random bits
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))
# the 12-bit counter as the text after the version digit
_COUNTER_TEXT = [f"{c:03x}-" for c in range(0x1000)]
_ID_BYTES = struct.Struct("16s")


def _claim(count: int, start: int) -> list[tuple[int, int, int]]:
    """The next ``count`` (ms, counter) positions as runs of (ms, first counter, length).

    RFC 9562 method 1: a new millisecond starts its counter at ``start`` (random, below
    64), the same millisecond continues where the last id left off, and a spent counter
    borrows the next millisecond from 0."""
    global _last_ms, _counter
    runs: list[tuple[int, int, int]] = []
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, counter = ms, start
        else:
            counter = _counter + 1
        while count:
            if counter > 0xFFF:
                _last_ms, counter = _last_ms + 1, 0
            n = min(count, 0x1000 - counter)
            runs.append((_last_ms, counter, n))
            counter += n
            count -= n
        _counter = counter - 1
    return runs


def new_event_ids(count: int) -> list[str]:
    """``count`` UUIDv7s in increasing order: a 48-bit ms timestamp, a 12-bit counter
    that keeps ids of the same millisecond increasing (RFC 9562 method 1; it
    starts at a random value below 64 each millisecond and borrows the next
    millisecond when spent), then 62 random bits."""
    if count <= 1:
        return [new_event_id()] if count == 1 else []
    # 8 random bytes an id (2 for the variant group, 6 for the last), 1 for a counter start
    rand = os.urandom(8 * count + 1)
    variant = bytearray(rand[: 2 * count])
    variant[::2] = variant[::2].translate(_VARIANT)
    heads = iter(variant.hex(" ", 2).split())
    tails = iter(rand[2 * count : -1].hex(" ", 6).split())
    ids: list[str] = []
    for ms, counter, n in _claim(count, rand[-1] & 0x3F):
        h = f"{ms:012x}"
        prefix = f"{h[:8]}-{h[8:]}-7"
        # the run's counters end it; heads and tails go on into the next run
        counters = _COUNTER_TEXT[counter : counter + n]
        ids += [
            f"{prefix}{c}{head}-{tail}"
            for c, head, tail in zip(counters, heads, tails, strict=False)
        ]
    return ids


def new_event_ids_and_bytes(count: int) -> tuple[list[str], list[bytes]]:
    """:func:`new_event_ids` with each id's 16 bytes, as the store keeps it."""
    ids = new_event_ids(count)
    raw = bytes.fromhex("".join(ids).replace("-", ""))
    return ids, [b for (b,) in _ID_BYTES.iter_unpack(raw)]


def new_event_id() -> str:
    """One new UUIDv7 (see :func:`new_event_ids`)."""
    rand = bytearray(os.urandom(9))
    rand[0] = _VARIANT[rand[0]]
    ((ms, counter, _),) = _claim(1, rand[8] & 0x3F)
    h = f"{ms:012x}"
    # a separator 6 bytes from the right: the variant group, then the last group
    return f"{h[:8]}-{h[8:]}-7{_COUNTER_TEXT[counter]}{rand[:8].hex('-', 6)}"


def canonical_event_id(value: object) -> str:
    """A client's event id in canonical lowercase form; any other form is refused."""
    if type(value) is not str or not _CANONICAL.fullmatch(value):
        raise InvalidValue(f"event_id must be a UUID in 8-4-4-4-12 hex form, got {value!r:.60}")
    return value.lower()


def derive_event_id(content_digest: str, line_no: int, file_name: str | None = None) -> str:
    """The id of the event on ``line_no`` (1-based) of a file with this SHA-256.

    Spool files pass their name, so two files with the same bytes stay two
    sets of events; ``atlasd import`` passes none (a file imported twice is
    the same events).
    """
    key = (
        f"{content_digest}:{line_no}"
        if file_name is None
        else (f"{file_name}:{content_digest}:{line_no}")
    )
    return str(uuid.uuid5(_ID_NAMESPACE, key))
