"""The hash chain that ties each event to the one before it (docs/eventlog.md).

An event's *content* ``C`` is its JSON encoding without ``hash``::

    {"seq":…,"event_id":…,"stream":…,"version":…,"type":…,"data":…,"meta":…,"recorded_at":…,"occurred_at":…,"origin":…}

fields in exactly this order (``occurred_at`` is absent from events appended
before it was introduced, and their content simply lacks it), no whitespace,
keys of every object inside ``data`` and ``meta`` sorted by code point,
strings escaped only where JSON requires (``"``, ``\\``, control characters;
non-ASCII written as UTF-8),
integers in decimal, floats in their shortest round-trip form (as msgspec
writes them). ``meta`` is ``{}`` when the client gave none. Then::

    hash = hex(sha256(prev_hash + "\\n" + C))

with ``prev_hash`` the previous event's hash (64 ``"0"`` for seq 1), as ASCII.
The stored event is ``C`` with ``,"hash":"…"`` added before its closing brace,
which is exactly how msgspec encodes :class:`~atlasd.events.Event`,
so the content is encoded once for both the hash and the stored body.
"""

from __future__ import annotations

import hashlib
from binascii import hexlify
from typing import Any

import msgspec

from atlasd.events import Event

__all__ = [
    "GENESIS_HASH",
    "SEALED_EXTRA",
    "content_hash",
    "seal",
    "seal_content",
    "sealed_body",
]

GENESIS_HASH = "0" * 64


class _Content(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An event without its hash, fields in Event's order."""

    seq: int
    event_id: str
    stream: str
    version: int
    type: str
    data: dict[str, Any]
    meta: dict[str, Any]
    recorded_at: int
    occurred_at: int | None = None
    origin: str


class _NewContent(msgspec.Struct):
    """:class:`_Content` of a new event, which always has ``occurred_at``: the same
    fields in the same order, so the same bytes, built positionally."""

    seq: int
    event_id: str
    stream: str
    version: int
    type: str
    data: dict[str, Any]
    meta: dict[str, Any]
    recorded_at: int
    occurred_at: int
    origin: str


# "deterministic": dict keys sorted, struct fields kept in definition order
_encode = msgspec.json.Encoder(order="deterministic").encode
_sha256 = hashlib.sha256
_after_newline = b"\n".join


def seal_content(
    prev_hash: bytes,
    seq: int,
    event_id: str,
    stream: str,
    version: int,
    event_type: str,
    data: dict[str, Any],
    meta: dict[str, Any],
    recorded_at: int,
    occurred_at: int,
    origin: str,
) -> tuple[bytes, bytes, bytes]:
    """The event's hash (its 32 bytes and its hex as ASCII bytes, the next event's
    ``prev_hash``) and its content ``C``, encoded once: the writer stores the hash's
    bytes and a slice of ``C`` and never builds the stored body."""
    content = _encode(
        _NewContent(
            seq, event_id, stream, version, event_type, data, meta, recorded_at, occurred_at, origin
        )
    )
    raw = _sha256(_after_newline((prev_hash, content))).digest()
    return raw, hexlify(raw), content


def sealed_body(content: bytes, digest: bytes) -> bytes:
    """The stored event: ``content`` with its ``hash`` (hex, ASCII) added before the
    closing brace."""
    return b"".join((content[:-1], b',"hash":"', digest, b'"}'))


#: How much longer the stored event is than its content.
SEALED_EXTRA = len(b',"hash":"') + 64 + len(b'"}') - 1


def seal(
    prev_hash: str,
    seq: int,
    event_id: str,
    stream: str,
    version: int,
    event_type: str,
    data: dict[str, Any],
    meta: dict[str, Any],
    recorded_at: int,
    occurred_at: int,
    origin: str,
) -> tuple[str, bytes]:
    """The event's hash and its stored encoding (the JSON of the whole Event)."""
    _, digest, content = seal_content(
        prev_hash.encode(),
        seq,
        event_id,
        stream,
        version,
        event_type,
        data,
        meta,
        recorded_at,
        occurred_at,
        origin,
    )
    return digest.decode(), sealed_body(content, digest)


def content_hash(prev_hash: str, event: Event) -> str:
    """The hash ``event`` must carry after ``prev_hash`` (for ``verify``)."""
    content = _encode(
        _Content(
            seq=event.seq,
            event_id=event.event_id,
            stream=event.stream,
            version=event.version,
            type=event.type,
            data=event.data,
            meta=event.meta,
            recorded_at=event.recorded_at,
            occurred_at=event.occurred_at,
            origin=event.origin,
        )
    )
    return _sha256(prev_hash.encode() + b"\n" + content).hexdigest()
