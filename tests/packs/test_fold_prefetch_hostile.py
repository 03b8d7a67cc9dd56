"""A group's prefetch with key values an attacker picks: the views equal a fresh replay,
and a stored row is always found again, never inserted twice."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from atlasd.eventlog import EventStore, NewEvent, StoreConfig
from atlasd.packs.engine import Fold
from atlasd.packs.registry import PackSet
from atlasd.packs.tables import create_view_tables
from tests.packs.test_fold_prefetch_keys import pairs_packs, seen

#: key parts that JSON writes with escapes, look like other JSON values, or are long
HOSTILE = [
    'q"uote',
    "back\\slash",
    "\\u0000",
    "é",
    "e\u0301",  # the same letter, decomposed: another key
    "\u2028",
    "😀",
    "1",
    "1.0",
    "01",
    "null",
    "true",
    "[]",
    "{}",
    "key",
    "value",
    "x" * 5000,
    "\x7f",
    "tab\t",
]

#: a key part holding NUL, which SQLite's JSON functions cut short
NUL = "a\x00b"


def fold_groups(
    conn: sqlite3.Connection, packs: PackSet, groups: list[list[Any]], *, fresh: bool
) -> None:
    """Each group folded and committed by a fold with an empty cache (as after a reopen)."""
    for events in groups:
        fold = Fold(conn, packs, dict.fromkeys(packs.view_names, 0), fresh=fresh)
        conn.execute("BEGIN")
        fold.apply_many(events)
        fold.flush()
        conn.execute("COMMIT")
        fresh = False


def pairs_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        'SELECT row_seq, "value", "key", "id", note, hits FROM view_pairs ORDER BY row_seq'
    ).fetchall()


def groups_over(parts: list[str]) -> list[list[Any]]:
    """Three groups of 3-part keys over ``parts``, each touching keys the one before stored
    (several keys share their first parts)."""
    keys = [
        (parts[i % len(parts)], parts[(i * 7) % len(parts)], parts[(i * 3) % 5]) for i in range(40)
    ]
    seq = iter(range(1, 10_000))
    return [
        [seen(next(seq), keys[i], f"g{g}") for i in range(g * 10, g * 10 + 25) if i < len(keys)]
        for g in range(3)
    ]


def test_views_after_prefetched_groups_of_hostile_keys_equal_a_fresh_replay() -> None:
    """Groups keyed by quotes, escapes, decomposed letters, JSON-looking strings and a
    5,000-character part, folded group by group with prefetches, give the rows a fresh
    fold of the same events gives."""
    packs = pairs_packs()
    groups = groups_over(HOSTILE)
    live = sqlite3.connect(":memory:", isolation_level=None)
    create_view_tables(live, packs, list(packs.views))
    fold_groups(live, packs, groups, fresh=False)
    replay = sqlite3.connect(":memory:", isolation_level=None)
    create_view_tables(replay, packs, list(packs.views))
    fold_groups(replay, packs, [[e for g in groups for e in g]], fresh=True)
    assert pairs_rows(live) == pairs_rows(replay)
    keys = [r[1:4] for r in pairs_rows(live)]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("at", [0, 1, 2])
def test_a_stored_row_keyed_with_nul_is_found_by_a_large_group(at: int) -> None:
    """A row whose key holds NUL in any part, stored by an earlier group, is updated by a
    group large enough to prefetch, not inserted a second time."""
    packs = pairs_packs()
    conn = sqlite3.connect(":memory:", isolation_level=None)
    create_view_tables(conn, packs, list(packs.views))
    key = ["p", "q", "r"]
    key[at] = NUL
    odd = (key[0], key[1], key[2])
    fold_groups(conn, packs, [[seen(1, odd, "first")]], fresh=False)
    later = [seen(10 + i, ("p", "q", f"r{i}"), "x") for i in range(10)]
    fold_groups(conn, packs, [[*later, seen(50, odd, "second")]], fresh=False)
    rows = [r for r in pairs_rows(conn) if r[1:4] == odd]
    assert [r[4:] for r in rows] == [("second", 2)]


def started(build_id: str) -> NewEvent:
    return NewEvent(
        stream="build:x",
        type="BuildStarted",
        data={"build_id": build_id, "prd_id": "p", "prd_name": "n"},
    )


async def test_a_batch_touching_a_stored_build_keyed_with_nul_is_appended(data_dir: Path) -> None:
    """A build whose id holds NUL, stored before a reopen, is updated by a later batch of
    ten events: the batch lands and the view keeps one row for it."""
    config = StoreConfig(data_dir=data_dir)
    async with await EventStore.open(config) as store:
        await store.append(started(NUL))
    async with await EventStore.open(config) as store:
        results = await store.append_batch([started(NUL), *(started(f"b{i}") for i in range(9))])
        assert len(results) == 10
        builds = await store.query("builds", limit=100)
    assert sum(1 for b in builds if b["build_id"] == NUL) == 1
    assert len(builds) == 10


async def test_a_nul_keyed_batch_does_not_fail_another_clients_batch_of_its_group(
    data_dir: Path,
) -> None:
    """One client's batch touching a stored NUL-keyed build, committed in the same group
    as another client's batch, must not take the other batch down with it."""
    config = StoreConfig(data_dir=data_dir)
    async with await EventStore.open(config) as store:
        await store.append(started(NUL))
    async with await EventStore.open(config) as store:
        hostile = [started(NUL), *(started(f"h{i}") for i in range(9))]
        innocent = [started(f"i{i}") for i in range(10)]
        outcomes = await asyncio.gather(
            store.append_batch(hostile), store.append_batch(innocent), return_exceptions=True
        )
        assert isinstance(outcomes[1], list), outcomes[1]
