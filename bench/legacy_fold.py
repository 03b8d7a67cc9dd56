"""Folding events into the five views (the rules of docs/views.md).

A :class:`Fold` keeps the rows a run of events touches in memory, loading each
from its table the first time it is needed, and :meth:`Fold.flush` writes them
back with one ``executemany`` per table. The writer folds each group commit's
events this way inside the append transaction, and ``rebuild`` folds the log
chunk by chunk with the very same code, so a view is always what a replay
gives.

Rows are lists in table column order (``row_seq`` first); the index constants
below name their cells.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

__all__ = ["PROJECTED_TYPES", "Fold"]

# builds row cells
_B_SEQ, _B_ID, _B_PRD_ID, _B_PRD_NAME, _B_STATUS, _B_ERROR = 0, 1, 2, 3, 4, 5
_B_STARTED, _B_COMPLETED, _B_TOTAL, _B_DONE, _B_FAILED = 6, 7, 8, 9, 10
# tasks row cells
_T_SEQ, _T_BUILD, _T_TASK, _T_TITLE, _T_AGENT, _T_STATUS = 0, 1, 2, 3, 4, 5
_T_DEPS, _T_PHASE, _T_ATTEMPTS, _T_ERROR, _T_CREATED, _T_UPDATED = 6, 7, 8, 9, 10, 11
# patterns / learnings cells used below
_P_SEQ, _P_TAGS, _P_CREATED = 0, 6, 7
_L_SEQ = 0

_NEVER = sys.maxsize

_encode = msgspec.json.encode
_decode_list = msgspec.json.Decoder(list[str]).decode


def _update(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return f"UPDATE {table} SET {', '.join(f'{n} = ?' for n in names)} WHERE row_seq = ?"


# Rows read back from a table are written with UPDATE (only changed indexes move);
# rows made in this fold with INSERT.
_UPDATE = {
    "builds": _update(
        "view_builds",
        "prd_id, prd_name, status, error, started_at, completed_at, tasks_total, tasks_done,"
        " tasks_failed",
    ),
    "tasks": _update(
        "view_tasks",
        "title, agent, status, dependencies, phase, attempts, error, created_at, updated_at",
    ),
    "patterns": _update("view_patterns", "name, description, code, language, tags, created_at"),
    "learnings": _update(
        "view_learnings", "insight, category, build_id, task_id, pattern_id, recorded_at"
    ),
}

_KEY_LEN = {"builds": 1, "tasks": 2, "patterns": 1, "learnings": 1}

_SQL = {
    "builds": (
        "SELECT row_seq, build_id, prd_id, prd_name, status, error, started_at, completed_at,"
        " tasks_total, tasks_done, tasks_failed FROM view_builds WHERE build_id = ?",
        "INSERT INTO view_builds (row_seq, build_id, prd_id, prd_name, status, error,"
        " started_at, completed_at, tasks_total, tasks_done, tasks_failed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    "tasks": (
        "SELECT row_seq, build_id, task_id, title, agent, status, dependencies, phase, attempts,"
        " error, created_at, updated_at FROM view_tasks WHERE build_id = ? AND task_id = ?",
        "INSERT INTO view_tasks (row_seq, build_id, task_id, title, agent, status,"
        " dependencies, phase, attempts, error, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    "executions": (
        "",
        "INSERT OR REPLACE INTO view_executions (row_seq, event_id, build_id, task_id, agent,"
        " model, gates_passed, duration_ms, error, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    "patterns": (
        "SELECT row_seq, pattern_id, name, description, code, language, tags, created_at"
        " FROM view_patterns WHERE pattern_id = ?",
        "INSERT INTO view_patterns (row_seq, pattern_id, name, description, code,"
        " language, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    "learnings": (
        "SELECT row_seq FROM view_learnings WHERE learning_id = ?",
        "INSERT INTO view_learnings (row_seq, learning_id, insight, category,"
        " build_id, task_id, pattern_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
}
# Many keys at once (the keys as one JSON array): a group's unknown rows in one
# statement per view instead of one per key.
_MANY = {
    "builds": _SQL["builds"][0].replace(
        "build_id = ?", "build_id IN (SELECT value FROM json_each(?))"
    ),
    "tasks": _SQL["tasks"][0].replace(
        "build_id = ? AND task_id = ?",
        "(build_id, task_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))",
    ),
    "patterns": _SQL["patterns"][0].replace(
        "pattern_id = ?", "pattern_id IN (SELECT value FROM json_each(?))"
    ),
    "learnings": _SQL["learnings"][0]
    .replace("SELECT row_seq FROM", "SELECT row_seq, learning_id FROM")
    .replace("learning_id = ?", "learning_id IN (SELECT value FROM json_each(?))"),
}
# Below this many unknown keys, one lookup per key is cheaper than the JSON round trip.
_PREFETCH_MIN = 8
_BUILD_TYPES = frozenset(("BuildStarted", "BuildCompleted", "TaskLogged", "TaskStatusChanged"))
_TASK_TYPES = frozenset(("TaskLogged", "TaskStatusChanged"))
_TAGS_DELETE = "DELETE FROM view_pattern_tags WHERE row_seq = ?"
_TAGS_INSERT = "INSERT OR IGNORE INTO view_pattern_tags (tag, row_seq) VALUES (?, ?)"
_CHECKPOINT = "UPDATE projections SET checkpoint = ? WHERE name = ?"


# Reading fields (docs/views.md "Reading fields"): a value of another JSON type is absent.
def _str(value: Any) -> str | None:
    return value if type(value) is str else None


def _num(value: Any) -> int | float | None:
    t = type(value)
    return value if t is int or t is float else None


def _bool(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _strlist(value: Any) -> list[str]:
    if type(value) is list and all(type(item) is str for item in value):
        return value
    return []


def _key(value: Any) -> str | None:
    return value if type(value) is str and value else None


class Fold:
    """Applies events to the views through an in-memory row cache.

    ``from_seq`` maps a view name to the seq it has already applied: events at
    or below it are skipped for that view (views not named are not touched).
    ``builds`` and ``tasks`` must be given together (the build counts are kept
    from the task rows' status changes).

    ``fresh``: the views were empty when this fold started (a rebuild), so a
    key this fold has not seen has no row yet and is not looked up.
    ``keep_rows``: rows kept in the cache across :meth:`flush` (written ones
    are clean), so that a replay finds recent rows without reading them back.

    Resource handling: the cache holds the rows touched since the last
    :meth:`flush` plus at most ``keep_rows`` kept ones; a ``fresh`` fold
    also remembers one hash per key it created. Callers flush every few
    thousand events.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        from_seq: dict[str, int],
        *,
        fresh: bool = False,
        keep_rows: int = 0,
    ) -> None:
        if ("builds" in from_seq) != ("tasks" in from_seq) or from_seq.get(
            "builds"
        ) != from_seq.get("tasks"):
            raise ValueError("builds and tasks are folded together, from the same seq")
        self._conn = conn
        self.views = tuple(from_seq)
        self._bt_from = from_seq.get("builds", _NEVER)
        self._x_from = from_seq.get("executions", _NEVER)
        self._p_from = from_seq.get("patterns", _NEVER)
        self._l_from = from_seq.get("learnings", _NEVER)
        self._builds: dict[str, list[Any]] = {}
        self._tasks: dict[tuple[str, str], list[Any]] = {}
        self._executions: list[tuple[Any, ...]] = []
        self._patterns: dict[str, list[Any]] = {}
        self._learnings: dict[str, list[Any]] = {}
        # per view: keys of rows changed since the last flush, and of those not yet in the table
        self._dirty: dict[str, set[Any]] = {v: set() for v in _KEY_LEN}
        self._new: dict[str, set[Any]] = {v: set() for v in _KEY_LEN}
        # the same sets, bound once: the handlers below run per event
        self._dirty_builds = self._dirty["builds"]
        self._dirty_tasks = self._dirty["tasks"]
        self._fresh = fresh
        # rows read ahead by _prefetch for the events being applied (None: none)
        self._known: dict[str, dict[Any, Any]] | None = None
        self._seen: set[int] = set()
        self._keep_rows = keep_rows
        self.pending = 0
        self._handlers: dict[str, Callable[[int, str, dict[str, Any], int], None]] = {
            "BuildStarted": self._build_started,
            "BuildCompleted": self._build_completed,
            "TaskLogged": self._task_logged,
            "TaskStatusChanged": self._task_status_changed,
            "ExecutionLogged": self._execution_logged,
            "PatternStored": self._pattern_stored,
            "LearningRecorded": self._learning_recorded,
        }

    def apply(self, seq: int, event_id: str, event_type: str, data: dict[str, Any], t: int) -> None:
        """Fold one event (any type; unknown types change nothing)."""
        handler = self._handlers.get(event_type)
        if handler is not None:
            self.pending += 1
            handler(seq, event_id, data, t)

    def apply_many(self, events: Sequence[tuple[int, str, str, dict[str, Any], int]]) -> None:
        if not self._fresh and len(events) >= _PREFETCH_MIN:
            self._prefetch(events)
        handlers = self._handlers
        try:
            for seq, event_id, event_type, data, t in events:
                handler = handlers.get(event_type)
                if handler is not None:
                    self.pending += 1
                    handler(seq, event_id, data, t)
        finally:
            self._known = None

    def _prefetch(self, events: Sequence[tuple[int, str, str, dict[str, Any], int]]) -> None:
        """Read the stored rows of every key these events touch and the cache lacks, with
        one statement per view; :meth:`_lookup` then answers from them."""
        wanted: dict[str, dict[Any, None]] = {v: {} for v in _KEY_LEN}
        caches: dict[str, dict[Any, list[Any]]] = {
            "builds": self._builds,
            "tasks": self._tasks,
            "patterns": self._patterns,
            "learnings": self._learnings,
        }
        for _, _, event_type, data, _ in events:
            if event_type in _BUILD_TYPES:
                build_id = _key(data.get("build_id"))
                if build_id is None:
                    continue
                if build_id not in self._builds:
                    wanted["builds"][build_id] = None
                if event_type in _TASK_TYPES:
                    task_id = _key(data.get("task_id"))
                    if task_id is not None and (build_id, task_id) not in self._tasks:
                        wanted["tasks"][(build_id, task_id)] = None
            elif event_type == "PatternStored":
                pattern_id = _key(data.get("pattern_id"))
                if pattern_id is not None and pattern_id not in self._patterns:
                    wanted["patterns"][pattern_id] = None
            elif event_type == "LearningRecorded":
                learning_id = _key(data.get("learning_id"))
                if learning_id is not None and learning_id not in self._learnings:
                    wanted["learnings"][learning_id] = None
        if sum(len(keys) for keys in wanted.values()) < _PREFETCH_MIN:
            return
        known: dict[str, dict[Any, Any]] = {}
        for view, keys in wanted.items():
            if not keys or view not in caches:
                continue
            found: dict[Any, Any] = dict.fromkeys(keys)  # None: not stored
            for row in self._conn.execute(_MANY[view], (_encode(list(keys)).decode(),)):
                if view == "tasks":
                    found[(row[1], row[2])] = row
                elif view == "learnings":
                    found[row[1]] = row[:1]
                else:
                    found[row[1]] = row
            known[view] = found
        self._known = known

    def flush(self, checkpoint: int | None = None) -> None:
        """Write every changed row and record ``checkpoint`` for the views."""
        conn = self._conn
        dirty, new = self._dirty, self._new
        if dirty["builds"]:
            self._write("builds", self._builds, lambda r: r)
        if dirty["tasks"]:
            self._write(
                "tasks",
                self._tasks,
                lambda r: (*r[:_T_DEPS], _encode(r[_T_DEPS]).decode(), *r[_T_DEPS + 1 :]),
            )
        if self._executions:
            conn.executemany(_SQL["executions"][1], self._executions)
            self._executions = []
        if dirty["patterns"]:
            rows = [(k, self._patterns[k]) for k in dirty["patterns"]]
            self._write(
                "patterns",
                self._patterns,
                lambda r: (*r[:_P_TAGS], _encode(r[_P_TAGS]).decode(), r[_P_CREATED]),
            )
            conn.executemany(
                _TAGS_DELETE, [(r[_P_SEQ],) for k, r in rows if k not in new["patterns"]]
            )
            conn.executemany(
                _TAGS_INSERT, [(tag, r[_P_SEQ]) for _, r in rows for tag in set(r[_P_TAGS])]
            )
        if dirty["learnings"]:
            self._write("learnings", self._learnings, lambda r: r)
        for view in _KEY_LEN:
            dirty[view].clear()
            new[view].clear()
        cached = len(self._builds) + len(self._tasks) + len(self._patterns) + len(self._learnings)
        if cached > self._keep_rows:
            self._builds, self._tasks, self._patterns, self._learnings = {}, {}, {}, {}
        self.pending = 0
        if checkpoint is not None:
            conn.executemany(_CHECKPOINT, [(checkpoint, name) for name in self.views])

    def _write(
        self, view: str, cache: dict[Any, list[Any]], encode: Callable[[list[Any]], Sequence[Any]]
    ) -> None:
        """INSERT the changed rows that are new, UPDATE the others (only changed indexes move)."""
        new = self._new[view]
        inserts, updates = [], []
        skip = 1 + _KEY_LEN[view]
        for key in self._dirty[view]:
            row = encode(cache[key])
            if key in new:
                inserts.append(row)
            else:
                updates.append((*row[skip:], row[0]))
        if inserts:
            self._conn.executemany(_SQL[view][1], inserts)
        if updates:
            self._conn.executemany(_UPDATE[view], updates)

    def _lookup(self, view: str, sql: str, key: Any) -> Any:
        """The stored row for a key the cache does not hold, or None (and the key is new)."""
        prefetched = None if self._known is None else self._known.get(view)
        if prefetched is not None and key in prefetched:
            found = prefetched.pop(key)
        elif self._fresh and hash(key) not in self._seen:
            found = None
        else:
            found = self._conn.execute(sql, key if type(key) is tuple else (key,)).fetchone()
        if found is None:
            self._new[view].add(key)
            if self._fresh:
                self._seen.add(hash(key))
        return found

    # -- rows ---------------------------------------------------------------

    def _build(self, build_id: str, seq: int) -> list[Any]:
        row = self._builds.get(build_id)
        if row is None:
            found = self._lookup("builds", _SQL["builds"][0], build_id)
            if found is not None:
                row = list(found)
            else:
                row = [seq, build_id, None, None, "running", None, None, None, 0, 0, 0]
            self._builds[build_id] = row
        self._dirty_builds.add(build_id)
        return row

    def _task(self, build: list[Any], task_id: str, seq: int, t: int) -> list[Any]:
        key = (build[_B_ID], task_id)
        row = self._tasks.get(key)
        if row is None:
            found = self._lookup("tasks", _SQL["tasks"][0], key)
            if found is not None:
                row = list(found)
                row[_T_DEPS] = _decode_list(row[_T_DEPS])
            else:
                row = [seq, key[0], task_id, None, None, None, [], None, 0, None, t, t]
                build[_B_TOTAL] += 1
            self._tasks[key] = row
        self._dirty_tasks.add(key)
        return row

    @staticmethod
    def _count(build: list[Any], old: str | None, new: str) -> None:
        if old == new:
            return
        if old == "done":
            build[_B_DONE] -= 1
        elif old == "failed":
            build[_B_FAILED] -= 1
        if new == "done":
            build[_B_DONE] += 1
        elif new == "failed":
            build[_B_FAILED] += 1

    # -- handlers -----------------------------------------------------------

    def _build_started(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        build_id = _key(data.get("build_id"))
        if build_id is None or seq <= self._bt_from:
            return
        row = self._build(build_id, seq)
        row[_B_PRD_ID] = _str(data.get("prd_id"))
        row[_B_PRD_NAME] = _str(data.get("prd_name"))
        row[_B_STARTED] = t

    def _build_completed(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        build_id = _key(data.get("build_id"))
        status = _str(data.get("status"))
        if build_id is None or status is None or seq <= self._bt_from:
            return
        row = self._build(build_id, seq)
        row[_B_STATUS] = status
        row[_B_ERROR] = _str(data.get("error"))
        row[_B_COMPLETED] = t

    def _task_logged(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        build_id = _key(data.get("build_id"))
        task_id = _key(data.get("task_id"))
        status = _str(data.get("status"))
        if build_id is None or task_id is None or status is None or seq <= self._bt_from:
            return
        build = self._build(build_id, seq)
        row = self._task(build, task_id, seq, t)
        self._count(build, row[_T_STATUS], status)
        row[_T_TITLE] = _str(data.get("title"))
        row[_T_AGENT] = _str(data.get("agent"))
        row[_T_STATUS] = status
        row[_T_DEPS] = _strlist(data.get("dependencies"))
        row[_T_PHASE] = _num(data.get("phase"))
        row[_T_UPDATED] = t

    def _task_status_changed(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        build_id = _key(data.get("build_id"))
        task_id = _key(data.get("task_id"))
        status = _str(data.get("status"))
        if build_id is None or task_id is None or status is None or seq <= self._bt_from:
            return
        build = self._build(build_id, seq)
        row = self._task(build, task_id, seq, t)
        self._count(build, row[_T_STATUS], status)
        row[_T_STATUS] = status
        row[_T_ERROR] = _str(data.get("error"))
        if status == "running":
            row[_T_ATTEMPTS] += 1
        row[_T_UPDATED] = t

    def _execution_logged(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        build_id = _key(data.get("build_id"))
        task_id = _key(data.get("task_id"))
        if build_id is None or task_id is None or seq <= self._x_from:
            return
        self._executions.append(
            (
                seq,
                event_id,
                build_id,
                task_id,
                _str(data.get("agent")),
                _str(data.get("model")),
                _bool(data.get("gates_passed")),
                _num(data.get("duration_ms")),
                _str(data.get("error")),
                t,
            )
        )

    def _pattern_stored(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        pattern_id = _key(data.get("pattern_id"))
        if pattern_id is None or seq <= self._p_from:
            return
        old = self._patterns.get(pattern_id)
        if old is None:
            found = self._lookup("patterns", _SQL["patterns"][0], pattern_id)
            old = list(found) if found is not None else None
        self._dirty["patterns"].add(pattern_id)
        self._patterns[pattern_id] = [
            old[_P_SEQ] if old else seq,
            pattern_id,
            _str(data.get("name")),
            _str(data.get("description")),
            _str(data.get("code")),
            _str(data.get("language")),
            _strlist(data.get("tags")),
            old[_P_CREATED] if old else t,
        ]

    def _learning_recorded(self, seq: int, event_id: str, data: dict[str, Any], t: int) -> None:
        learning_id = _key(data.get("learning_id"))
        if learning_id is None or seq <= self._l_from:
            return
        old = self._learnings.get(learning_id)
        if old is not None:
            row_seq = old[_L_SEQ]
        else:
            found = self._lookup("learnings", _SQL["learnings"][0], learning_id)
            row_seq = found[0] if found is not None else seq
        self._dirty["learnings"].add(learning_id)
        self._learnings[learning_id] = [
            row_seq,
            learning_id,
            _str(data.get("insight")),
            _str(data.get("category")),
            _str(data.get("build_id")),
            _str(data.get("task_id")),
            _str(data.get("pattern_id")),
            t,
        ]


PROJECTED_TYPES = frozenset(
    (
        "BuildStarted",
        "BuildCompleted",
        "TaskLogged",
        "TaskStatusChanged",
        "ExecutionLogged",
        "PatternStored",
        "LearningRecorded",
    )
)
