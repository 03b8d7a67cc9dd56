"""The shared vectors: every view equals the hand-computed rows, inline and after a rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlasd.eventlog import VIEWS, EventStore, StoreConfig, rebuild
from tests.eventlog.vectors import VECTOR_FILES, all_rows, append_vector, load


def test_vector_files_exist_and_name_every_view() -> None:
    """Every vector file has events and an expected entry for each of the five views."""
    assert len(VECTOR_FILES) >= 10
    for path in VECTOR_FILES:
        vector = load(path)
        assert vector["events"], path.name
        assert sorted(vector["expected"]) == sorted(VIEWS), path.name


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
async def test_inline_projection_matches_vector(path: Path, data_dir: Path) -> None:
    """Appending a vector's events yields exactly its expected rows in every view."""
    vector = load(path)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, vector)
        actual = await all_rows(store)
    assert json.loads(json.dumps(actual)) == vector["expected"]
    # JSON equality treats 1 == 1.0 and True == 1; types must match too
    assert _types(actual) == _types(vector["expected"])


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
async def test_rebuilt_views_match_vector(path: Path, data_dir: Path) -> None:
    """After `rebuild`, every view still holds exactly the vector's expected rows."""
    vector = load(path)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, vector)
    rebuild(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        actual = await all_rows(store)
    assert actual == vector["expected"]
    assert _types(actual) == _types(vector["expected"])


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__
