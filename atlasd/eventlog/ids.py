"""Event ids: new UUIDv7s (RFC 9562; the stdlib has none before 3.14) and client ids checked."""

from __future__ import annotations

import os
import re
import threading
import time

from atlasd.errors import InvalidValue

__all__ = ["canonical_event_id", "new_event_id"]

_HEX = "[0-9a-fA-F]"
_CANONICAL = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_event_id() -> str:
    """A UUIDv7: 48-bit ms timestamp, then a 12-bit counter that keeps ids made in
    the same millisecond increasing (RFC 9562 method 1), then 62 random bits."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2)) & 0x3FF  # leave room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter spent: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def canonical_event_id(value: object) -> str:
    """A client's event id in canonical lowercase form; any other form is refused."""
    if type(value) is not str or not _CANONICAL.fullmatch(value):
        raise InvalidValue(f"event_id must be a UUID in 8-4-4-4-12 hex form, got {value!r:.60}")
    return value.lower()
