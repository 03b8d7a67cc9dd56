"""The hash chain that ties each event to the one before it (CONTRACT section 2).

``hash = sha256(C).hexdigest()`` where ``C`` is the canonical JSON encoding of
the array::

    [prev_hash, seq, event_id, stream, version, type, data, meta, recorded_at, origin]

Canonical JSON: UTF-8, no whitespace, object keys sorted by code point, strings
with only ``"``, ``\\`` and control characters escaped (non-ASCII written as
is), integers in decimal, floats in their shortest round-trip form (as
msgspec writes them). ``prev_hash`` is the previous event's hash, 64 ``"0"``
for seq 1. ``meta`` is ``{}`` when the client gave none.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["GENESIS_HASH", "event_hash"]

GENESIS_HASH = "0" * 64

_canonical = msgspec.json.Encoder(order="sorted")


def event_hash(
    prev_hash: str,
    seq: int,
    event_id: str,
    stream: str,
    version: int,
    event_type: str,
    data: dict[str, Any],
    meta: dict[str, Any],
    recorded_at: int,
    origin: str,
) -> str:
    encoded = _canonical.encode(
        [prev_hash, seq, event_id, stream, version, event_type, data, meta, recorded_at, origin]
    )
    return hashlib.sha256(encoded).hexdigest()
