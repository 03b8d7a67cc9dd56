"""A group's prefetch finds stored rows by the key's index, whatever the key's columns."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from atlasd.packs.engine import Fold
from atlasd.packs.loader import load_pack_text
from atlasd.packs.registry import PackSet, builtin_packs
from atlasd.packs.tables import create_view_tables

#: A view keyed by three columns out of column order and apart, named like json_each's own.
PAIRS: dict[str, Any] = {
    "pack": "pairs",
    "views": {
        "pairs": {
            "key": ["value", "key", "id"],
            "columns": {
                "key": "string",
                "note": "string",
                "value": "string",
                "hits": "integer",
                "seen_at": "time",
                "id": "string",
            },
            "time": "seen_at",
        }
    },
    "events": {
        "PairSeen": {
            "stream": "pair:{value}",
            "fields": {
                "value": {"type": "id", "required": True},
                "key": {"type": "id", "required": True},
                "id": {"type": "id", "required": True},
                "note": {"type": "string", "required": False},
            },
            "needs": ["value", "key", "id"],
            "apply": [
                {
                    "op": "upsert",
                    "view": "pairs",
                    "key": {"value": "value", "key": "key", "id": "id"},
                    "set": {"note": "note", "seen_at": "$time"},
                    "increment": ["hits"],
                }
            ],
        }
    },
}


def pairs_packs() -> PackSet:
    return PackSet([load_pack_text(json.dumps(PAIRS), "pairs.json")])


#: key parts JSON writes with escapes, or that a careless reader would take apart
ODD = ['q"uote', "back\\slash", "\\u0041", "é\u2028", "tab\tnew\nline", "\x01", "😀", "a.b[0]"]


def seen(seq: int, parts: tuple[str, str, str], note: str) -> tuple[Any, ...]:
    value, key, id_ = parts
    data = {"value": value, "key": key, "id": id_, "note": note}
    return (seq, f"e{seq}", "PairSeen", data, 1_000)


def key_of(i: int) -> tuple[str, str, str]:
    """Keys sharing their first parts, so that the nesting has more than one item a level."""
    return (ODD[i % 3], ODD[(i // 3) % len(ODD)], f"{ODD[i % len(ODD)]}{i}")


def fold_group(conn: sqlite3.Connection, packs: PackSet, events: list[Any]) -> list[str]:
    """One group folded by a fold with an empty cache (as after a reopen), committed; the
    SELECTs it ran."""
    fold = Fold(conn, packs, dict.fromkeys(packs.view_names, 0))
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    try:
        conn.execute("BEGIN")
        fold.apply_many(events)
        fold.flush()
        conn.execute("COMMIT")
    finally:
        conn.set_trace_callback(None)
    return [sql for sql in ran if sql.startswith("SELECT")]


def test_a_large_group_updates_stored_rows_keyed_by_columns_apart_and_out_of_order() -> None:
    """Rows keyed by ("value", "key", "id"), columns that json_each also has, neither
    adjacent nor in key order, with parts JSON escapes, are found by a later group's
    prefetch and updated in place; a key differing in one part is a new row."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    packs = pairs_packs()
    create_view_tables(conn, packs, list(packs.views))
    fold_group(conn, packs, [seen(1 + i, key_of(i), "first") for i in range(24)])
    other = (ODD[0], ODD[0], ODD[1])
    later = [seen(100 + i, key_of(i), "second") for i in range(24)]
    selects = fold_group(conn, packs, [*later, seen(200, other, "new")])
    assert len(selects) == 1  # the prefetch alone: no row looked up one by one
    rows = conn.execute('SELECT "value", "key", "id", note, hits FROM view_pairs ORDER BY row_seq')
    assert rows.fetchall() == [
        *((*key_of(i), "second", 2) for i in range(24)),
        (*other, "new", 1),
    ]


def test_every_builtin_view_prefetch_searches_its_key_index() -> None:
    """The statement reading a group's unknown rows looks each key up in the view's key
    index, never scanning the table."""
    conn = sqlite3.connect(":memory:")
    packs = builtin_packs()
    create_view_tables(conn, packs, list(packs.views))
    fold = Fold(conn, packs, dict.fromkeys(packs.view_names, 0))
    for name, rows in fold.rows.items():
        explained = conn.execute(f"EXPLAIN QUERY PLAN {rows.code.select_many}", ("[]",))
        plan = [row[3] for row in explained]
        index = f"SEARCH v USING INDEX sqlite_autoindex_view_{name}_1 "
        assert any(step.startswith(index) for step in plan), (name, plan)
        assert not any(step.startswith("SCAN v") for step in plan), (name, plan)
