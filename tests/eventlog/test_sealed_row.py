"""The writer's row, built from the content encoded once, is the row of the stored event."""

from __future__ import annotations

from typing import Any

import pytest

from atlasd.eventlog.chain import GENESIS_HASH, SEALED_EXTRA, seal, seal_content
from atlasd.eventlog.rows import event_id_bytes, sealed_row, stored_row

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
