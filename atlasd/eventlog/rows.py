"""The shape of a row of the ``events`` table, and the stored event rebuilt from it.

A stored event (the JSON ``read_raw`` serves, the export prints and archive
segments hold; docs/eventlog.md, "Hash chain") is::

    {"seq":S,"event_id":"I","stream":T,"version":V,"type":Y,<payload>,"hash":"H"}

The table keeps each part once: ``seq``, ``stream``, ``version`` and ``type``
in their indexed columns, the event id as its 16 bytes, the hash as its 32
bytes, and ``payload``: the bytes from ``"data":`` up to the hash (data, meta,
recorded_at, occurred_at, origin), exactly as they were hashed. The event is
rebuilt from them byte for byte; the migration to this layout checked that for
every row before it dropped the old one.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "COLUMNS",
    "FIXED_BYTES",
    "body_of",
    "event_id_bytes",
    "event_id_text",
    "payload_object",
    "sealed_row",
    "stored_row",
]

#: The columns :func:`body_of` takes, in its order (prefix each with ``e.`` in a join).
COLUMNS = ("seq", "event_id", "stream", "version", "type", "hash", "payload")

_HASH_AT = len(b',"hash":"') + 64 + len(b'"}')
_FORMAT = (
    b'{"seq":%d,"event_id":"%b-%b-%b-%b-%b","stream":%b,"version":%d,"type":%b,%b,"hash":"%b"}'
)
#: What a stored event has beyond its seq and version digits, quoted stream and type
#: and payload: the format's own bytes and the id's 32 and the hash's 64 hex digits.
FIXED_BYTES = len(_FORMAT % (0, b"", b"", b"", b"", b"", b"", 0, b"", b"", b"")) - 2 + 32 + 64
_encode = msgspec.json.encode


def event_id_text(raw: bytes) -> str:
    """The canonical (lowercase, 8-4-4-4-12) form of a stored event id."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_id_bytes(event_id: str) -> bytes:
    """The 16 bytes stored for a canonical event id (the lookup key of ``event_id``)."""
    return bytes.fromhex(event_id.replace("-", ""))


def body_of(
    seq: int,
    event_id: bytes,
    stream: str,
    version: int,
    event_type: str,
    digest: bytes,
    payload: bytes,
) -> bytes:
    """The stored event of one row (columns in :data:`COLUMNS` order)."""
    h = event_id.hex().encode()
    return _FORMAT % (
        seq,
        h[:8],
        h[8:12],
        h[12:16],
        h[16:20],
        h[20:],
        _encode(stream),
        version,
        _encode(event_type),
        payload,
        digest.hex().encode(),
    )


def payload_object(payload: bytes) -> bytes:
    """The payload as a JSON object (``data``, ``meta``, ``recorded_at``, ...)."""
    return b"{" + payload + b"}"


def sealed_row(
    seq: int,
    event_id: bytes,
    stream: str,
    version: int,
    event_type: str,
    recorded_at: int,
    digest: bytes,
    content: bytes,
) -> tuple[Any, ...]:
    """:func:`stored_row` from the id's 16 bytes and what
    :func:`~atlasd.eventlog.chain.seal_content` gives (the hash's bytes and the content),
    without the stored body in between: the payload is the content from its data on,
    less the closing brace."""
    return (
        seq,
        event_id,
        stream,
        version,
        event_type,
        recorded_at,
        digest,
        content[content.index(b',"data":') + 1 : -1],
    )


def stored_row(
    seq: int,
    event_id: str,
    stream: str,
    version: int,
    event_type: str,
    recorded_at: int,
    digest: str,
    body: bytes,
) -> tuple[Any, ...]:
    """The row inserted for a sealed event (``Statements.insert_event``'s parameters).

    ``body`` is the sealed event: its first ``,"data":`` is the key's, since the
    strings before it cannot hold an unescaped quote.
    """
    start = body.index(b',"data":') + 1
    return (
        seq,
        event_id_bytes(event_id),
        stream,
        version,
        event_type,
        recorded_at,
        bytes.fromhex(digest),
        body[start:-_HASH_AT],
    )
