"""query: filters, tags all-of, creation order, limits, and clear errors."""

from __future__ import annotations

import pytest

from atlasd.errors import BadRequest
from atlasd.eventlog import EventStore, NewEvent
from tests.eventlog.vectors import VECTOR_DIR, append_vector, load


def pattern(pid: str, language: str, tags: list[str]) -> NewEvent:
    data = {"pattern_id": pid, "name": pid, "description": "", "code": ""}
    data |= {"language": language, "tags": tags}
    return NewEvent(stream=f"pattern:{pid}", type="PatternStored", data=data)


async def test_patterns_filter_by_language_and_all_of_tags(store: EventStore) -> None:
    """tags matches rows having every given tag; language is equality."""
    await store.append_batch(
        [
            pattern("p1", "python", ["retry", "network"]),
            pattern("p2", "python", ["retry"]),
            pattern("p3", "go", ["retry", "network", "cache"]),
            pattern("p4", "python", []),
        ]
    )

    async def ids(**filter: object) -> list[str]:
        return [r["pattern_id"] for r in await store.query("patterns", filter)]

    assert await ids(language="python") == ["p1", "p2", "p4"]
    assert await ids(tags=["retry"]) == ["p1", "p2", "p3"]
    assert await ids(tags=["retry", "network"]) == ["p1", "p3"]
    assert await ids(tags="cache") == ["p3"]
    assert await ids(tags=["retry", "network"], language="python") == ["p1"]
    assert await ids(tags=[]) == ["p1", "p2", "p3", "p4"]
    assert await ids(tags=["nope"]) == []


async def test_restored_pattern_drops_old_tags(store: EventStore) -> None:
    """A re-stored pattern matches its new tags only."""
    await store.append(pattern("p1", "python", ["old"]))
    await store.append(pattern("p1", "python", ["new"]))
    assert await store.query("patterns", {"tags": ["old"]}) == []
    assert [r["tags"] for r in await store.query("patterns", {"tags": ["new"]})] == [["new"]]


async def test_rows_come_in_creation_order_or_newest_first(store: EventStore) -> None:
    """Rows are ordered by the seq that created them; desc reverses; limit cuts."""
    await append_vector(store, load(VECTOR_DIR / "interleaved_builds.json"))
    tasks = await store.query("tasks")
    assert [(r["build_id"], r["task_id"]) for r in tasks] == [
        ("b11", "t1"), ("b12", "t1"), ("b12", "t2"), ("b12", "t3"),
    ]  # fmt: skip
    newest = await store.query("tasks", order="desc", limit=2)
    assert [(r["build_id"], r["task_id"]) for r in newest] == [("b12", "t3"), ("b12", "t2")]


async def test_equality_filters_on_any_column(store: EventStore) -> None:
    """Filters match columns exactly, null included, booleans as booleans."""
    await append_vector(store, load(VECTOR_DIR / "interleaved_builds.json"))
    assert [
        r["task_id"] for r in await store.query("tasks", {"build_id": "b12", "status": "done"})
    ] == ["t3"]
    assert [r["build_id"] for r in await store.query("builds", {"error": None})] == ["b11"]
    assert [r["build_id"] for r in await store.query("executions", {"gates_passed": False})] == [
        "b12"
    ]
    assert [r["task_id"] for r in await store.query("tasks", {"dependencies": ["t1"]})] == ["t2"]
    assert len(await store.query("tasks", {"attempts": 1})) == 2
    executions = await store.query("executions")
    assert {type(r["gates_passed"]) for r in executions} == {bool}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "unknown view 'nope'"),
        (("tasks", {"colour": "red"}), "view tasks has no column 'colour'"),
        (("tasks", {"attempts": "1"}), "filter tasks.attempts must be an integer"),
        (("tasks", {"status": ["done"]}), "filter tasks.status must be a string"),
        (("patterns", {"tags": [1]}), "filter tags must be a string or a list of strings"),
        (("tasks", None, 0), "limit must be an integer in 1..10000"),
        (("tasks", None, 10_001), "limit must be an integer in 1..10000"),
        (("tasks", None, 10, "up"), "order must be 'asc' or 'desc'"),
        (("tasks", ["status"]), "filter must be an object"),
    ],
)
async def test_malformed_queries_are_bad_requests(
    store: EventStore, args: tuple[object, ...], message: str
) -> None:
    """Unknown views or columns and malformed values get bad_request saying what is wrong."""
    with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(".", r"\.")):
        await store.query(*args)  # type: ignore[arg-type]
