"""Event ids: new UUIDv7s (RFC 9562; the stdlib has none before 3.14), client ids checked,
and the ids derived for events read from a file that carries none."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

from atlasd.errors import InvalidValue

__all__ = ["canonical_event_id", "derive_event_id", "new_event_id", "new_event_ids"]

_HEX = "[0-9a-fA-F]"
_CANONICAL = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
# a random hex digit -> the RFC 9562 variant digit (binary 10xx) keeping its low 2 bits
_VARIANT_DIGIT = {d: "89ab"[int(d, 16) & 0x3] for d in "0123456789abcdef"}

#: Namespace of derived event ids; fixed forever so derivations stay stable.
_ID_NAMESPACE = uuid.UUID("5b0c7f4e-3c1a-4f59-9d4e-8a6f2c1b7d20")

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
    # 16 random hex digits per id: the first becomes the variant digit (8..b, keeping
    # its 2 low bits), the other 15 are random as they are: 2 + 60 = 62 random bits
    rand = os.urandom(8 * count).hex()
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, int(rand[0], 16) & 0x3  # a random start below 4 ...
            _counter = (_counter << 4) | int(rand[1], 16)  # ... times 16: below 64
        else:
            _counter += 1
        ids: list[str] = []
        prefix_ms = -1
        prefix = ""
        for i in range(count):
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
            if _last_ms != prefix_ms:
                prefix_ms = _last_ms
                h = f"{_last_ms:012x}"
                prefix = f"{h[:8]}-{h[8:]}-7"
            r = rand[16 * i : 16 * i + 16]
            ids.append(f"{prefix}{_counter:03x}-{_VARIANT_DIGIT[r[0]]}{r[1:4]}-{r[4:]}")
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
