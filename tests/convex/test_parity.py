"""The daemon and the Convex functions judge every value alike and hash it alike.

A generated corpus of hostile values goes through the daemon's validation
and chain (``atlasd.eventlog``) and, as the JSON text the sync would send,
through the remote's own checks, canonical encoding and hash
(``convex/double/parity.ts`` under node). Every verdict is equal; for every
accepted event the remote's canonical text, before and after Convex's own
value conversion (what it stores and gives back), is byte for byte the
log's, and its hash the log's hash.

One class of input is left out of the refusal side on purpose: integers
beyond +/-2**53, which JSON cannot carry into JavaScript as integers (they
arrive as floats); the daemon refuses them before they are logged.
"""

from __future__ import annotations

import json
import math
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlasd.errors import AtlasdError
from atlasd.eventlog.chain import GENESIS_HASH, seal
from atlasd.events.validation import check_document_size, check_stream, check_value
from tests.support.convex_double import CONVEX_DIR

ORIGIN = "0190dddd-0000-7000-8000-000000000001"
MAX_SAFE = 2**53


class _Remote:
    """One node process answering a verdict per line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", "--import", "tsx", "double/parity.ts"],
            cwd=CONVEX_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def judge(self, event_json: str, prev: str = GENESIS_HASH) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        line = json.dumps({"origin": ORIGIN, "event": event_json, "prev": prev})
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert answer["verdict"] != "error", answer
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def remote() -> Iterator[_Remote]:
    judge = _Remote()
    try:
        yield judge
    finally:
        judge.close()


def _local(stream: Any, data: Any) -> tuple[str, bytes | None, str | None]:
    """The daemon's verdict: ("accepted", stored body, hash) or ("refused", None, None)."""
    try:
        checked_stream = check_stream(stream)
        checked = check_value(data, "data")
        digest, body = seal(
            GENESIS_HASH, 1, str(uuid.uuid4()), checked_stream, 1, "Note", checked, {}, 7, 7, ORIGIN
        )
        check_document_size(body)
    except AtlasdError:
        return "refused", None, None
    return "accepted", body, digest


def _as_sent(stream: str, data: Any) -> str:
    """The event as a sender would put it on the wire (for values the daemon refused)."""
    event = {
        "seq": 1,
        "event_id": str(uuid.uuid4()),
        "stream": stream,
        "version": 1,
        "type": "Note",
        "data": data,
        "meta": {},
        "recorded_at": 7,
        "occurred_at": 7,
        "origin": ORIGIN,
        "hash": "0" * 64,
    }
    return msgspec.json.encode(event).decode()


def _carries_big_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -MAX_SAFE <= value <= MAX_SAFE
    if isinstance(value, list):
        return any(_carries_big_int(v) for v in value)
    if isinstance(value, dict):
        return any(_carries_big_int(v) for v in value.values())
    return False


def _check_parity(remote: _Remote, stream: str, data: Any) -> None:
    verdict, body, digest = _local(stream, data)
    if verdict == "accepted":
        assert body is not None
        answer = remote.judge(body.decode())
        assert answer["verdict"] == "accepted", answer
        content = body[: body.rindex(b',"hash":')] + b"}"
        assert answer["content"].encode() == content
        assert answer["stored"].encode() == content
        assert answer["hash"] == digest
    elif not _carries_big_int(data):
        answer = remote.judge(_as_sent(stream, data))
        assert answer["verdict"] == "refused", (stream, data)


# -- the corpus ----------------------------------------------------------------------------

_keys = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=8),
    st.sampled_from(["", "$ref", "__proto__", "constructor", "a\x00", "caf\u00e9", "_id", "\x7f"]),
    st.text(min_size=1, max_size=3),
)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [1.0, -0.0, 0.5, 1e16, 1e20, 1e21, 1e-5, 1e-6, 1e-7, 5e-324, 2.0**53, 2.0**53 + 2, 1e300]
    ),
    st.integers(-(2**60), 2**60).map(float),
)
_ints = st.one_of(
    st.integers(-MAX_SAFE - 2, MAX_SAFE + 2),
    st.sampled_from([0, -1, MAX_SAFE, -MAX_SAFE, MAX_SAFE + 1, 2**63]),
)
_strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\u2028", "\U0001f600" * 3, "\x7f\x9f", 'quote"back\\slash', "\t\n"]),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _strings)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=20,
)
_data = st.dictionaries(_keys, _values, max_size=6)
_streams = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["\U0001f600" * 150, "\U0001f600" * 200, "\U0001f600" * 201, "x" * 201]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_data)
def test_every_generated_value_gets_one_verdict_one_text_and_one_hash(
    remote: _Remote, data: dict[str, Any]
) -> None:
    """Hostile keys, numbers and strings: equal verdicts; accepted ones equal bytes and hash."""
    _check_parity(remote, "notes", data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_streams)
def test_stream_names_are_measured_alike(remote: _Remote, stream: str) -> None:
    """Streams with emoji, control characters and boundary lengths: equal verdicts."""
    _check_parity(remote, stream, {"n": 1})


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("15 levels of data", {"d": _nested(14)}),
        ("16 levels of data", {"d": _nested(15)}),
        ("8192 items", {"a": [0] * 8192}),
        ("8193 items", {"a": [0] * 8193}),
        ("1024 fields", {f"k{i}": i for i in range(1024)}),
        ("1025 fields", {f"k{i}": i for i in range(1025)}),
        ("1024-character key", {"k" * 1024: 1}),
        ("1025-character key", {"k" * 1025: 1}),
        ("1 MB JSON, 4.5 MB to Convex", {f"a{i}": [0] * 8192 for i in range(62)}),
        ("just under Convex's 1 MiB", {f"a{i}": [0] * 8192 for i in range(14)}),
        ("integral floats", {"one": 1.0, "zero": -0.0, "big": 2.0**53, "bigger": 2.0**60}),
    ],
)
def test_boundary_values_get_the_same_verdict(remote: _Remote, name: str, data: Any) -> None:
    """Each limit on both sides of its boundary, sizes as Convex counts them."""
    _check_parity(remote, "notes", data)


def test_integral_floats_are_logged_as_the_integers_javascript_sees() -> None:
    """1.0 is stored as 1 and -0.0 as 0; 1e20 stays a float (beyond 2**53)."""
    checked = check_value({"a": 1.0, "b": -0.0, "c": 1e20, "d": [2.5, 3.0]}, "data")
    assert checked == {"a": 1, "b": 0, "c": 1e20, "d": [2.5, 3]}
    assert [type(checked[k]) for k in "abc"] == [int, int, float]
    assert not math.copysign(1, checked["b"]) < 0
