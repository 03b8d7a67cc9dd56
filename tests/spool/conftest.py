"""A real event store in a temp data dir, and helpers to drop spool files."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore
from atlasd.eventlog.config import StoreConfig


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="spool-", dir="/tmp"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spool_dir(data_dir: Path) -> Path:
    path = data_dir / "spool"
    path.mkdir(parents=True)
    return path


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[EventStore]:
    opened = await EventStore.open(StoreConfig(data_dir=data_dir, synchronous="NORMAL"))
    try:
        yield opened
    finally:
        await opened.close()
