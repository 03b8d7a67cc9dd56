"""The daemon's collector policy: start-up state frozen, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from atlasd.daemon.gcpolicy import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Put the interpreter's collector back as it was after the test."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settling_freezes_what_is_alive_and_raises_the_young_threshold(restored_gc: None) -> None:
    """Objects alive at start-up leave the collected generations; gen 0 waits longer."""
    alive = [[n] for n in range(1000)]
    before = gc.get_threshold()
    settle_heap()
    assert gc.get_freeze_count() >= len(alive)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
    assert before[0] < YOUNG_THRESHOLD


def test_cyclic_garbage_is_still_collected_after_settling(restored_gc: None) -> None:
    """Freezing stops nothing made later from being collected."""
    settle_heap()

    class Node:
        other: object

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
