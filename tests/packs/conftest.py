"""Fixtures: a real store on a real SQLite file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, StoreConfig


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[EventStore]:
    opened = await EventStore.open(StoreConfig(data_dir=data_dir))
    try:
        yield opened
    finally:
        await opened.close()
