"""A replay pauses Python's cycle collector while it folds, and leaves it as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    try:
        yield
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


async def fill(data_dir: Path) -> None:
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append_batch(
            [
                NewEvent(stream="build:b1", type="BuildStarted", data={"build_id": "b1"}),
                NewEvent(
                    stream="build:b1",
                    type="TaskLogged",
                    data={"build_id": "b1", "task_id": "t1", "status": "pending"},
                ),
            ]
        )


@pytest.mark.usefixtures("collector_restored")
async def test_a_rebuild_folds_with_the_collector_paused_then_enables_it(data_dir: Path) -> None:
    """Each chunk is folded with the collector off; once done it is on again."""
    await fill(data_dir)
    gc.enable()
    seen: list[bool] = []
    report = rebuild(data_dir, progress=lambda _done, _total: seen.append(gc.isenabled()))
    assert report.events == 2
    assert seen
    assert not any(seen)
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
async def test_a_rebuild_leaves_a_collector_that_was_off_off(data_dir: Path) -> None:
    """A caller that turned the collector off finds it off after a rebuild."""
    await fill(data_dir)
    gc.disable()
    rebuild(data_dir)
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
async def test_a_failing_rebuild_enables_the_collector_again(data_dir: Path) -> None:
    """An error raised mid-fold (here by the progress callback) still re-enables it."""
    await fill(data_dir)
    gc.enable()

    def fail(_done: int, _total: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        rebuild(data_dir, progress=fail)
    assert gc.isenabled()
