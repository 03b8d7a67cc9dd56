"""The writer's row, built from the content encoded once, is the row of the stored event."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from atlasd.eventlog.chain import GENESIS_HASH, SEALED_EXTRA, content_hash, seal, seal_content
from atlasd.eventlog.rows import event_id_bytes, sealed_row, stored_row
from atlasd.events import Event

EVENT_ID = "0190b2a4-1234-7abc-8def-0123456789ab"


@pytest.mark.parametrize(
    ("stream", "data", "meta"),
    [
        ("build:b1", {"build_id": "b1"}, {}),
        ('s "quoted" ,"data":', {"data": {',"data":': [1, 2.5, None]}}, {"k": "v"}),
        ("ünïcode ✓", {}, {"data": "x"}),
    ],
)
def test_the_sealed_row_equals_the_row_of_the_stored_body(
    stream: str, data: dict[str, Any], meta: dict[str, Any]
) -> None:
    """Same hash bytes, same payload, same columns; the body's length is the content's
    plus SEALED_EXTRA, even when the stream or data spell ``,"data":`` themselves."""
    args = (GENESIS_HASH, 7, EVENT_ID, stream, 3, "T.x", data, meta, 1_000, 900, EVENT_ID)
    digest, body = seal(*args)
    raw, hexed, content = seal_content(GENESIS_HASH.encode(), *args[1:])
    assert raw.hex() == digest == hexed.decode()
    assert len(body) == len(content) + SEALED_EXTRA
    key = event_id_bytes(EVENT_ID)
    assert sealed_row(7, key, stream, 3, "T.x", 1_000, raw, content) == stored_row(
        7, EVENT_ID, stream, 3, "T.x", 1_000, digest, body
    )


def test_a_new_events_seal_is_what_verify_recomputes() -> None:
    """The writer's content hashes as ``verify`` hashes the stored event, and the stored
    body is the Event's own encoding, hash included, after a previous event too."""
    prev = "ab" * 32
    data = {"z": 1, "a": [2.5, None], "m": {"y": True, "b": "\u2603"}}
    digest, body = seal(prev, 8, EVENT_ID, "s", 2, "T.x", data, {"k": "v"}, 5, 4, EVENT_ID)
    event = msgspec.json.decode(body, type=Event)
    assert event.hash == digest == content_hash(prev, event)
    assert msgspec.json.Encoder(order="deterministic").encode(event) == body
