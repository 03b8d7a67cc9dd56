"""Fixtures of the sync tests: a real store in a short temp dir, the double, a proxy."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from atlasd.eventlog import EventStore, StoreConfig
from tests.support.convex_double import convex_double, convex_double_session  # noqa: F401
from tests.sync.ingest_server import IngestServer


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory under /tmp, short enough for AF_UNIX socket paths."""
    path = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def store(short_dir: Path) -> AsyncIterator[EventStore]:
    """A fresh event store; closed after the test."""
    opened = await EventStore.open(StoreConfig(data_dir=short_dir / "data"))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def ingest_server() -> Iterator[IngestServer]:
    """The minimal local ingest server (no Convex logic)."""
    with IngestServer("local-token") as server:
        yield server
