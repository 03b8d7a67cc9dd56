"""Schema creation and migration, stale projectors rebuilt on open, the data dir lock."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from atlasd.errors import Unavailable
from atlasd.eventlog import DataDirLock, EventStore, NewEvent, StoreConfig, default_data_dir
from atlasd.eventlog.projections import VIEW_SPECS
from atlasd.eventlog.sql import SCHEMA_VERSION
from tests.eventlog.vectors import VECTOR_DIR, all_rows, append_vector, load


async def test_schema_is_created_from_user_version_zero(data_dir: Path) -> None:
    """An empty database file (user_version 0) is migrated to the current schema."""
    data_dir.mkdir(parents=True)  # noqa: ASYNC240 - test set-up
    sqlite3.connect(data_dir / "atlasd.db").close()
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(NewEvent(stream="s", type="T", data={}))
    db = sqlite3.connect(data_dir / "atlasd.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


async def test_database_from_a_newer_atlasd_is_refused(data_dir: Path) -> None:
    """A schema newer than this code knows is not touched: unavailable."""
    data_dir.mkdir(parents=True)  # noqa: ASYNC240 - test set-up
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(Unavailable, match="newer"):
        await EventStore.open(StoreConfig(data_dir=data_dir))


async def test_projector_version_change_rebuilds_that_pack_only_on_open(data_dir: Path) -> None:
    """A view whose stored version differs is rebuilt from the log at open, with the
    other views of its pack; the views of other packs stay as they are."""
    lifecycle = load(VECTOR_DIR / "lifecycle.json")
    assets = load(VECTOR_DIR / "assets.json")
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, lifecycle)
        await append_vector(store, assets)
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute("UPDATE projections SET version = version - 1 WHERE name = 'patterns'")
    db.execute("DELETE FROM view_patterns")
    db.execute("UPDATE view_executions SET model = 'stale'")  # same pack: rebuilt too
    db.execute("UPDATE view_assets SET name = 'stale'")  # another pack: must stay as is
    db.commit()
    db.close()
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        rows = await all_rows(store)
        stats = await store.stats()
    assert rows["patterns"] == lifecycle["expected"]["patterns"]
    assert rows["executions"] == lifecycle["expected"]["executions"]
    assert {r["name"] for r in rows["assets"]} == {"stale"}
    assert {p.name: p.version for p in stats.projections} == {
        name: spec.version for name, spec in VIEW_SPECS.items()
    }


async def test_tables_of_views_no_pack_defines_are_dropped_on_open(data_dir: Path) -> None:
    """A view table left by a pack that is gone (or an older layout) is dropped at open."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(NewEvent(stream="s", type="T", data={}))
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute("CREATE TABLE view_pattern_tags (tag TEXT, row_seq INTEGER)")
    db.execute("INSERT INTO projections (name, version, checkpoint) VALUES ('gone', 1, 1)")
    db.commit()
    db.close()
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        names = {p.name for p in (await store.stats()).projections}
    db = sqlite3.connect(data_dir / "atlasd.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "view_pattern_tags" not in tables
    assert "gone" not in names
    assert names == set(VIEW_SPECS)


async def test_view_behind_its_checkpoint_catches_up_on_open(data_dir: Path) -> None:
    """A view whose checkpoint is behind the log is folded forward from it at open."""
    vector = load(VECTOR_DIR / "learnings.json")
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await append_vector(store, vector)
    db = sqlite3.connect(data_dir / "atlasd.db")
    # pretend the last event never reached the view (as if written by an older build)
    db.execute("UPDATE projections SET checkpoint = 2 WHERE name = 'learnings'")
    db.execute(
        "UPDATE view_learnings SET insight = 'Cache the client', pattern_id = NULL,"
        " recorded_at = 100 WHERE learning_id = 'l1'"
    )
    db.commit()
    db.close()
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        rows = await all_rows(store)
    assert rows["learnings"] == vector["expected"]["learnings"]


def test_data_dir_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    """A second lock on the same data dir fails with the holder's pid; release frees it."""
    with DataDirLock(tmp_path), pytest.raises(Unavailable, match=f"pid {os.getpid()}"):
        DataDirLock(tmp_path).acquire()
    with DataDirLock(tmp_path):
        pass


def test_default_data_dir_follows_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """$ATLASD_DATA_DIR wins; else $XDG_STATE_HOME/atlasd; else ~/.local/state/atlasd."""
    monkeypatch.setenv("ATLASD_DATA_DIR", "/somewhere/else")
    assert default_data_dir() == Path("/somewhere/else")
    monkeypatch.delenv("ATLASD_DATA_DIR")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg/state")
    assert default_data_dir() == Path("/xdg/state/atlasd")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    assert default_data_dir() == Path("/home/u/.local/state/atlasd")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_data_dir() == Path("/var/lib/atlasd")
