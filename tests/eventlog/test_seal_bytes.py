"""The positional seal writes the bytes the keyword seal wrote, for every JSON input, and
a store written with it verifies."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, verify
from atlasd.eventlog.chain import GENESIS_HASH, _Content, seal, seal_content, sealed_body

_deterministic = msgspec.json.Encoder(order="deterministic").encode

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # no lone surrogates
    max_size=12,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(text, values, max_size=5)

# what validation lets into the log: printable ASCII field names, integers within 2**53
names = st.from_regex(r"[a-z][a-zA-Z0-9_ \"\\.'-]{0,7}", fullmatch=True)
stored_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 53), max_value=1 << 53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=20,
)
stored_objects = st.dictionaries(names, stored_values, max_size=5)


def keyword_seal(prev: str, *args: Any) -> tuple[bytes, bytes]:
    """The seal as it was made before the change: the content Struct built by keyword."""
    seq, event_id, stream, version, event_type, data, meta, recorded, occurred, origin = args
    content = _deterministic(
        _Content(
            seq=seq,
            event_id=event_id,
            stream=stream,
            version=version,
            type=event_type,
            data=data,
            meta=meta,
            recorded_at=recorded,
            occurred_at=occurred,
            origin=origin,
        )
    )
    return hashlib.sha256(prev.encode() + b"\n" + content).digest(), content


@settings(max_examples=300, deadline=None)
@given(
    prev=st.sampled_from([GENESIS_HASH, "ab" * 32]),
    seq=st.integers(1, (1 << 62)),
    stream=text,
    version=st.integers(1, 1 << 40),
    event_type=text,
    data=objects,
    meta=objects,
    recorded=st.integers(0, 1 << 50),
    occurred=st.integers(-(1 << 53), 1 << 53),
    origin=text,
)
def test_the_positional_seal_equals_the_keyword_seal(
    prev: str,
    seq: int,
    stream: str,
    version: int,
    event_type: str,
    data: dict[str, Any],
    meta: dict[str, Any],
    recorded: int,
    occurred: int,
    origin: str,
) -> None:
    """Hash and content are byte-identical to the keyword-built seal's, for any stream,
    type, data and meta (non-ASCII, escapes, huge integers, floats, nesting)."""
    event_id = "0190b2a4-1234-7abc-8def-0123456789ab"
    args = (seq, event_id, stream, version, event_type, data, meta, recorded, occurred, origin)
    raw, hexed, content = seal_content(prev.encode(), *args)
    old_raw, old_content = keyword_seal(prev, *args)
    assert content == old_content
    assert raw == old_raw
    assert hexed == old_raw.hex().encode()
    digest, body = seal(prev, *args)
    assert body == sealed_body(content, hexed)
    assert digest == old_raw.hex()


@settings(max_examples=8, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.just("s"),
            stored_objects,
            st.none() | stored_objects,
            st.none() | st.integers(0, 1 << 50),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_store_written_by_the_positional_seal_verifies(
    events: list[tuple[str, dict[str, Any], dict[str, Any] | None, int | None]],
) -> None:
    """Events with any data, meta or none, occurred_at or none, appended one by one and
    in a batch, make a log that verify accepts."""

    async def run(data_dir: Path) -> None:
        new = [
            NewEvent(
                stream="s",
                type="T.x",
                data=data,
                meta=meta,
                occurred_at=occurred,
            )
            for stream, data, meta, occurred in events
        ]
        async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
            await store.append(new[0])
            await store.append_batch(new)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        asyncio.run(run(data_dir))
        report = verify(data_dir)
        assert report.ok, report.findings
