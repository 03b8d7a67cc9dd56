"""The shared vectors: every view equals the hand-computed rows, inline and after a rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlasd.errors import InvalidValue
from atlasd.eventlog import VIEWS, EventStore, StoreConfig, rebuild
from atlasd.packs.registry import builtin_packs
from tests.eventlog.vectors import VECTOR_FILES, all_rows, append_vector, expected_rows, load


def test_vector_files_exist_and_name_only_known_views() -> None:
    """Every vector file has events and expected rows keyed by built-in view names only."""
    assert len(VECTOR_FILES) >= 10
    for path in VECTOR_FILES:
        vector = load(path)
        assert vector["events"], path.name
        assert vector["expected"], path.name
        assert set(vector["expected"]) <= set(VIEWS), path.name


def test_every_builtin_view_has_rows_in_some_vector() -> None:
    """The shared vectors cover every view of every built-in pack with at least one row."""
    covered = {
        view for path in VECTOR_FILES for view, rows in load(path)["expected"].items() if rows
    }
    assert set(builtin_packs().view_names) <= covered


def test_only_legacy_vectors_hold_events_the_schema_refuses() -> None:
    """A vector not marked legacy appends through the schema check; a legacy one needs
    the bypass (one of its events at least is refused)."""
    packs = builtin_packs()
    for path in VECTOR_FILES:
        vector = load(path)
        refused = 0
        for event in vector["events"]:
            try:
                packs.check_event(event["type"], event["data"])
            except InvalidValue:
                refused += 1
        assert (refused > 0) == vector.get("legacy", False), path.name


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
async def test_inline_projection_matches_vector(path: Path, data_dir: Path) -> None:
    """Appending a vector's events yields exactly its expected rows in every view."""
    vector = load(path)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, vector)
        actual = await all_rows(store)
    expected = expected_rows(vector)
    assert json.loads(json.dumps(actual)) == expected
    # JSON equality treats 1 == 1.0 and True == 1; types must match too
    assert _types(actual) == _types(expected)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
async def test_rebuilt_views_match_vector(path: Path, data_dir: Path) -> None:
    """After `rebuild`, every view still holds exactly the vector's expected rows."""
    vector = load(path)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, vector)
    rebuild(data_dir)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        actual = await all_rows(store)
    expected = expected_rows(vector)
    assert actual == expected
    assert _types(actual) == _types(expected)


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__
