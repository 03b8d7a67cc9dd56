"""Event ids: new UUIDv7s (RFC 9562; the stdlib has none before 3.14) and client ids checked."""

from __future__ import annotations

import os
import re
import threading
import time

from atlasd.errors import InvalidValue

__all__ = ["canonical_event_id", "new_event_id", "new_event_ids"]

_HEX = "[0-9a-fA-F]"
_CANONICAL = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
_VARIANT = 0b10 << 62
_RAND_MASK = (1 << 62) - 1

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_event_ids(count: int) -> list[str]:
    """``count`` UUIDv7s in increasing order: a 48-bit ms timestamp, a 12-bit counter
    that keeps ids of the same millisecond increasing (RFC 9562 method 1; it
    starts at a random value below 64 each millisecond and borrows the next
    millisecond when spent), then 62 random bits."""
    global _last_ms, _counter
    if count <= 0:
        return []
    rand = os.urandom(8 * count)
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, rand[0] & 0x3F
        else:
            _counter += 1
        ids: list[str] = []
        for i in range(count):
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
            bits = int.from_bytes(rand[8 * i : 8 * i + 8]) & _RAND_MASK
            h = f"{(_last_ms << 80) | ((0x7000 | _counter) << 64) | _VARIANT | bits:032x}"
            ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
            _counter += 1
        _counter -= 1
    return ids


def new_event_id() -> str:
    """One new UUIDv7 (see :func:`new_event_ids`)."""
    return new_event_ids(1)[0]


def canonical_event_id(value: object) -> str:
    """A client's event id in canonical lowercase form; any other form is refused."""
    if type(value) is not str or not _CANONICAL.fullmatch(value):
        raise InvalidValue(f"event_id must be a UUID in 8-4-4-4-12 hex form, got {value!r:.60}")
    return value.lower()
