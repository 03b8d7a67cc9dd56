"""Loading the shared test vectors (tests/vectors/*.json, format in docs/views.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atlasd.eventlog import VIEWS, EventStore, NewEvent
from atlasd.eventlog.projections import VIEW_SPECS

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text())
    return vector


def expected_rows(vector: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The vector's expected rows for every view: a view it does not list is empty."""
    return {view: vector["expected"].get(view, []) for view in VIEWS}


async def append_vector(store: EventStore, vector: dict[str, Any]) -> None:
    """Append the vector's events one by one, each with its own recorded_at (and
    occurred_at where the vector gives one); a legacy vector's events skip the
    packs' append-time schema, as a log written before packs holds them."""
    legacy = vector.get("legacy", False)
    for event in vector["events"]:
        new = NewEvent(
            stream=event["stream"],
            type=event["type"],
            data=event["data"],
            event_id=event.get("event_id"),
            meta=event.get("meta"),
            occurred_at=event.get("occurred_at"),
        )
        await store.append_batch([new], recorded_at=event["recorded_at"], check_schema=not legacy)


def sort_rows(view: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    key = VIEW_SPECS[view].key
    return sorted(rows, key=lambda row: tuple(row[k] for k in key))


async def all_rows(store: EventStore) -> dict[str, list[dict[str, Any]]]:
    return {view: sort_rows(view, await store.query(view, limit=10_000)) for view in VIEWS}
