"""UUIDv7 generation under a clock that stands still, goes back or jumps: ids stay
strictly increasing, valid and canonical, and no random bits are reused."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from atlasd.events import ids as ids_module
from atlasd.events.ids import new_event_id, new_event_ids, new_event_ids_and_bytes

#: a moment well past the real clock, so that ids made here never meet real ones
BASE_MS = 4_000_000_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids' clock, in ms, set by the test (index 0); the generator's state is
    restored afterwards, so later ids follow the real clock again."""
    now = [BASE_MS]
    monkeypatch.setattr(ids_module, "_last_ms", 0)
    monkeypatch.setattr(ids_module, "_counter", 0)
    monkeypatch.setattr(ids_module, "time", SimpleNamespace(time_ns=lambda: now[0] * 1_000_000))
    return now


def check_valid(event_ids: list[str]) -> None:
    """Canonical lowercase 8-4-4-4-12 text, version 7, variant 10xx, strictly increasing
    (as text and as 128-bit numbers), 62 random bits never repeated."""
    ints = []
    for event_id in event_ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id, event_id
        assert parsed.version == 7, event_id
        assert (parsed.int >> 62) & 0b11 == 0b10, event_id
        ints.append(parsed.int)
    assert all(a < b for a, b in itertools.pairwise(ints))
    assert all(a < b for a, b in itertools.pairwise(event_ids))
    rand = {i & ((1 << 62) - 1) for i in ints}
    assert len(rand) == len(ints)


def make(kind: str) -> Callable[[int], list[str]]:
    if kind == "one":
        return lambda n: [new_event_id() for _ in range(n)]
    if kind == "many":
        return new_event_ids
    return lambda n: new_event_ids_and_bytes(n)[0]


@pytest.mark.parametrize("kind", ["one", "many", "bytes"])
def test_ids_increase_while_the_clock_stands_still_past_4096(clock: list[int], kind: str) -> None:
    """A frozen clock: 12,291 ids (calls of 1, 2, 4095, 4096 and 4097 ids) keep
    increasing, borrowing the next milliseconds from counter 0."""
    made: list[str] = []
    for n in (1, 2, 4095, 4096, 4097):
        made += make(kind)(n)
    assert len(made) == 12_291
    check_valid(made)
    ms = [uuid.UUID(i).int >> 80 for i in made]
    assert ms[0] == BASE_MS
    assert max(ms) >= BASE_MS + 3


def test_ids_increase_when_the_clock_goes_back(clock: list[int]) -> None:
    """The clock stepping back (NTP) never makes an id smaller than the last one."""
    made = new_event_ids(3)
    clock[0] -= 60_000
    made += [new_event_id(), *new_event_ids(5000)]
    clock[0] += 30_000
    made += new_event_ids(7)
    check_valid(made)
    assert all(uuid.UUID(i).int >> 80 >= BASE_MS for i in made)


def test_a_new_millisecond_after_a_borrowed_one_takes_the_clock_again(clock: list[int]) -> None:
    """Ids borrowed ahead of the clock are followed by ones of the clock's millisecond
    once it passes them, its counter starting below 64."""
    made = new_event_ids(4096 * 3)  # runs to BASE_MS + 2 or + 3
    last_ms = uuid.UUID(made[-1]).int >> 80
    clock[0] = last_ms + 5
    made += new_event_ids(2)
    check_valid(made)
    assert uuid.UUID(made[-2]).int >> 80 == last_ms + 5
    assert (uuid.UUID(made[-2]).int >> 64) & 0xFFF < 64


def test_ids_bytes_are_the_16_bytes_of_their_text(clock: list[int]) -> None:
    """new_event_ids_and_bytes: each id's bytes are exactly its UUID's, across runs of
    several milliseconds."""
    event_ids, raw = new_event_ids_and_bytes(9000)
    check_valid(event_ids)
    assert raw == [uuid.UUID(i).bytes for i in event_ids]
    assert all(type(b) is bytes and len(b) == 16 for b in raw)


def test_ids_made_by_several_threads_are_distinct_and_each_threads_increase() -> None:
    """Threads calling all three makers at once get distinct ids, each thread's in
    increasing order, and all of them valid UUIDv7s."""
    results: list[list[str]] = [[] for _ in range(6)]
    start = threading.Barrier(6)

    def work(n: int) -> None:
        start.wait()
        for i in range(300):
            kind = ("one", "many", "bytes")[(n + i) % 3]
            results[n] += make(kind)(1 + (i * 7) % 40)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for r in results for i in r]
    assert len(set(everything)) == len(everything)
    for r in results:
        check_valid(r)
    check_valid(sorted(everything))
