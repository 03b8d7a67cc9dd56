"""Operator packs in a real store: projected, queried, and rebuilt alone when changed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from atlasd.errors import InvalidValue
from atlasd.eventlog import EventStore, NewEvent, StoreConfig, rebuild, verify
from atlasd.packs.loader import PackError
from tests.eventlog.vectors import VECTOR_DIR, append_vector, load

#: An operator pack using every op: set, set once, count up, add to a list, remove matching.
NOTES: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "notes.json").read_text())


def note(note_id: str, book: str, text: str) -> NewEvent:
    return NewEvent(
        stream=f"note:{note_id}",
        type="NoteSaved",
        data={"note_id": note_id, "book_id": book, "text": text},
    )


def label(note_id: str, name: str) -> NewEvent:
    data = {"note_id": note_id, "label": name}
    return NewEvent(stream=f"note:{note_id}", type="NoteLabelled", data=data)


def burn(book: str) -> NewEvent:
    return NewEvent(stream=f"book:{book}", type="BookBurnt", data={"book_id": book})


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "packs"
    directory.mkdir()
    (directory / "notes.json").write_text(json.dumps(NOTES, indent=2))
    return directory


async def test_an_operator_pack_is_projected_checked_and_queried(
    data_dir: Path, packs_dir: Path
) -> None:
    """Its events fill its view (set, set once, count up, add to a list, remove matching
    rows), its schema refuses bad data, and query filters every column."""
    config = StoreConfig(data_dir=data_dir, packs_dir=packs_dir)
    async with await EventStore.open(config) as store:
        await store.append_batch([note("n1", "b1", "one"), note("n2", "b1", "two")])
        await store.append_batch([note("n1", "b1", "one v2"), label("n1", "x"), label("n1", "y")])
        await store.append_batch([label("n1", "x"), note("n3", "b2", "three"), label("n3", "x")])
        with pytest.raises(InvalidValue, match=r"^data\.label: required$"):
            await store.append(
                NewEvent(stream="note:n1", type="NoteLabelled", data={"note_id": "n1"})
            )
        rows = await store.query("notes")
        assert rows[0] == {
            "note_id": "n1", "book_id": "b1", "text": "one v2", "labels": ["x", "y"],
            "edits": 2, "created_at": rows[0]["created_at"],
        }  # fmt: skip
        assert [r["note_id"] for r in await store.query("notes", {"labels": ["x"]})] == ["n1", "n3"]
        assert [r["note_id"] for r in await store.query("notes", {"labels": ["y", "x"]})] == ["n1"]
        assert [r["note_id"] for r in await store.query("notes", {"book_id": "b1"})] == ["n1", "n2"]
        await store.append(burn("b1"))
        assert [r["note_id"] for r in await store.query("notes")] == ["n3"]
    assert verify(data_dir, packs_dir=packs_dir).ok


async def test_a_changed_pack_rebuilds_only_its_views(data_dir: Path, packs_dir: Path) -> None:
    """Changing an operator pack rebuilds its views at the next open; the built-in views
    are not touched; removing the pack drops its table."""
    config = StoreConfig(data_dir=data_dir, packs_dir=packs_dir)
    async with await EventStore.open(config) as store:
        await append_vector(store, load(VECTOR_DIR / "assets.json"))
        await store.append_batch([note("n1", "b1", "one"), label("n1", "x")])
    db = sqlite3.connect(data_dir / "atlasd.db")
    db.execute("UPDATE view_assets SET name = 'stale'")
    db.execute("UPDATE view_notes SET text = 'stale'")
    db.commit()
    db.close()
    changed = json.loads(json.dumps(NOTES))
    changed["views"]["notes"]["indexes"].append(["text"])
    (packs_dir / "notes.json").write_text(json.dumps(changed))
    async with await EventStore.open(config) as store:
        assert [r["text"] for r in await store.query("notes")] == ["one"]
        assert {r["name"] for r in await store.query("assets")} == {"stale"}
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        assert "notes" not in {p.name for p in (await store.stats()).projections}
    db = sqlite3.connect(data_dir / "atlasd.db")
    assert (
        db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'view_notes'").fetchone()[0]
        == 0
    )
    db.close()
    report = rebuild(data_dir, packs_dir=packs_dir)
    assert report.events == 13


async def test_a_bad_operator_pack_stops_the_store_from_opening(
    data_dir: Path, packs_dir: Path
) -> None:
    """A pack that fails its checks raises PackError with file and line; nothing opens."""
    (packs_dir / "notes.json").write_text('{\n  "pack": "notes",\n  "views": 3,\n  "events": {}\n}')
    with pytest.raises(PackError, match=r"notes\.json:3: views must be an object"):
        await EventStore.open(StoreConfig(data_dir=data_dir, packs_dir=packs_dir))
    assert not (data_dir / "atlasd.db").exists()
