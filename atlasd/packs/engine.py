"""The fold: pack definitions turned into Python that applies events to view rows.

For each event type the engine writes the source of one small function (the
``needs`` checks, then each action with its reads, sets and counts, with row
positions and column types resolved once) and compiles it. Nothing from a
pack reaches that source except names the checker restricted to
``[a-z][a-z0-9_]`` and JSON scalars written with ``repr``; field names and
event types are passed as constants, never pasted. A :class:`Fold` keeps the
rows a run of events touches in memory, loading each from its table the first
time it is needed, and :meth:`Fold.flush` writes them back with one
``executemany`` per table and statement. The writer folds each group
commit's events this way inside the append transaction, and ``rebuild`` folds
the log chunk by chunk with the very same code, so a view is always what a
replay gives.

Rows are lists in table column order (``row_seq`` first, then the view's
columns in order).
"""

from __future__ import annotations

import operator
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from itertools import compress
from operator import is_not
from typing import Any

import msgspec

from atlasd.packs.fields import reads_as
from atlasd.packs.model import Action, EventDef, View
from atlasd.packs.registry import PackSet
from atlasd.packs.tables import ENCODED_TYPES, quote, table_name

__all__ = ["Fold", "FoldEvent"]

FoldEvent = tuple[int, str, str, dict[str, Any], int]

_NEVER = sys.maxsize
_MAX_INT = 1 << 53
_encode = msgspec.json.encode
_decode = msgspec.json.decode
# Below this many unknown keys, one lookup per key is cheaper than the JSON round trip.
_PREFETCH_MIN = 8
# One row at a time through the primary key: an IN list (or json_each) builds an
# ephemeral index each time, twice the cost per group (docs/eventlog.md).
_CHECKPOINT = "UPDATE projections SET checkpoint = ? WHERE name = ?"


# -- reading by column type (docs/views.md "The pack format") -------------------


def _int(value: Any) -> int | None:
    t = type(value)
    if t is int:
        return value  # type: ignore[no-any-return]
    if t is float and value.is_integer() and -_MAX_INT <= value <= _MAX_INT:
        return int(value)
    return None


def _strlist(value: Any) -> list[str]:
    if type(value) is not list:
        return []
    for item in value:  # (a loop: no generator made per call)
        if type(item) is not str:
            return []
    return value


def _strlist_copy(value: Any) -> list[str]:
    """:func:`_strlist` as a list of the cell's own."""
    if type(value) is not list:
        return []
    for item in value:
        if type(item) is not str:
            return []
    return value.copy()


def _add(current: list[str], value: Any) -> list[str]:
    items = [value] if type(value) is str else _strlist(value)
    new = [item for item in dict.fromkeys(items) if item not in current]
    return [*current, *new] if new else current


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _own(value: Any) -> Any:
    """A JSON value copied as deep as it has lists and objects (scalars are shared)."""
    t = type(value)
    if t is list:
        return [item if type(item) in _SCALARS else _own(item) for item in value]
    if t is dict:
        return {k: item if type(item) in _SCALARS else _own(item) for k, item in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def _when(value: Any, allowed: tuple[Any, ...]) -> bool:
    return value is not None and any(_same(value, a) for a in allowed)


_READ = {
    "string": "({v} if type({v}) is str else None)",
    "integer": "_int({v})",
    "time": "_int({v})",
    "number": "({v} if type({v}) is int or type({v}) is float else None)",
    "boolean": "({v} if type({v}) is bool else None)",
    # copies: a cell never shares a list or an object with the event's data, which an
    # in-process caller may change once its append returned
    "string_list": "_strlist_copy({v})",
    "json": "_own({v})",
}


class _ViewCode:
    """Positions and statements of one view, resolved once."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.name = view.name
        self.table = table_name(view.name)
        self.pos = {name: i + 1 for i, (name, _type) in enumerate(view.columns)}
        self.types = dict(view.columns)
        self.key_pos = tuple(self.pos[k] for k in view.key)
        self.single = len(view.key) == 1
        first = self.key_pos[0]
        #: the key's cells as one slice of a row, when they are adjacent and in order
        self.key_slice: slice | None = None
        if self.key_pos == tuple(range(first, first + len(self.key_pos))):
            self.key_slice = slice(first, first + len(self.key_pos))
        names = ["row_seq", *(quote(name) for name, _ in view.columns)]
        keys = [quote(k) for k in view.key]
        self.encoded = tuple(self.pos[n] for n, t in view.columns if t in ENCODED_TYPES)
        self.booleans = tuple(self.pos[n] for n, t in view.columns if t == "boolean")
        where = " AND ".join(f"{k} = ?" for k in keys)
        self.select = f"SELECT {', '.join(names)} FROM {self.table} WHERE {where}"
        # each key of the JSON parameter looked up in the key's index, in this order (CROSS
        # JOIN; no IN list is built first); the columns named through "v": json_each has its
        # own. A key of several columns comes nested (see _nest_keys): each part a member's
        # name or an item, never an extract that parses its array again for each key.
        last = len(keys) - 1
        sources = ["json_each(?) AS j0"]
        sources += [f"json_each(j{i - 1}.value) AS j{i}" for i in range(1, last + 1)]
        on = " AND ".join(
            f"v.{k} = j{i}.{'value' if i == last else 'key'}" for i, k in enumerate(keys)
        )
        self.select_many = (
            f"SELECT {', '.join(f'v.{n}' for n in names)}"
            f" FROM {' CROSS JOIN '.join(sources)} CROSS JOIN {self.table} AS v ON {on}"
        )
        self.insert = (
            f"INSERT INTO {self.table} ({', '.join(names)})"
            f" VALUES ({', '.join('?' for _ in names)})"
        )
        self.rest = tuple(i for i in range(1, len(names)) if i not in self.key_pos)
        self._names = names
        self._updates: dict[tuple[int, ...], str] = {}
        self._update_params: dict[tuple[int, ...], Callable[[Sequence[Any]], tuple[Any, ...]]] = {}
        #: every position but row_seq's and the key's, for the identity scan of a flush
        self.rest_set = frozenset(self.rest)
        self.positions = range(len(names))
        self.update = self.update_of(self.rest)
        self.delete = f"DELETE FROM {self.table} WHERE row_seq = ?"
        template: list[Any] = [None] * len(names)
        counted = {count.column for count in view.counts}
        for name, column_type in view.columns:
            if column_type == "string_list":
                template[self.pos[name]] = []
            if name in counted:
                template[self.pos[name]] = 0
        for name, value in view.initial.items():
            template[self.pos[name]] = value
        self.template = template
        #: counts over this view: (counting view, its column position, by positions,
        #: where as (position, allowed values)), filled in by the engine
        self.counted_by: list[tuple[_ViewCode, int, tuple[int, ...], tuple[Any, ...]]] = []
        #: positions of this view's columns that counts look at (by and where)
        self.contrib: tuple[int, ...] = ()

    def update_of(self, positions: tuple[int, ...]) -> str:
        """The UPDATE that writes the cells at ``positions`` (and no other: SQLite then
        leaves the indexes of the other columns, and their pages, alone)."""
        sql = self._updates.get(positions)
        if sql is None:
            names = self._names
            sql = self._updates[positions] = (
                f"UPDATE {self.table} SET {', '.join(f'{names[i]} = ?' for i in positions)}"
                " WHERE row_seq = ?"
            )
        return sql

    def update_params_of(
        self, positions: tuple[int, ...]
    ) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
        """The parameters of :meth:`update_of`'s statement from a (decoded) row: the cells
        at ``positions`` as the table stores them, then ``row_seq``."""
        params = self._update_params.get(positions)
        if params is None:
            encoded = [i for i in positions if i in self.encoded]
            if not encoded:
                params = operator.itemgetter(*positions, 0)
            else:
                at = tuple(positions)

                def params(row: Sequence[Any]) -> tuple[Any, ...]:
                    return (
                        *[
                            _encode(row[i]).decode()
                            if i in encoded and row[i] is not None
                            else row[i]
                            for i in at
                        ],
                        row[0],
                    )

            self._update_params[positions] = params
        return params

    def key_of(self, row: Sequence[Any]) -> Any:
        if self.single:
            return row[self.key_pos[0]]
        if self.key_slice is not None:
            return tuple(row[self.key_slice])
        return tuple(row[i] for i in self.key_pos)

    def decode(self, stored: Sequence[Any]) -> list[Any]:
        row = list(stored)
        for i in self.encoded:
            value = row[i]
            if value is not None:
                row[i] = _decode(value)
        if self.booleans:
            for i in self.booleans:
                if row[i] is not None:
                    row[i] = bool(row[i])
        return row

    def encode(self, row: list[Any]) -> list[Any]:
        if not self.encoded:
            return row
        out = list(row)
        for i in self.encoded:
            value = out[i]
            if value is not None:
                out[i] = _encode(value).decode()
        return out


class _Program:
    """The compiled fold of a pack set: generated once, bound to each :class:`Fold`."""

    def __init__(self, packs: PackSet) -> None:
        self.packs = packs
        self.views = {name: _ViewCode(view) for name, view in packs.views.items()}
        for view in self.views.values():
            for count in view.view.counts:
                child = self.views[count.view]
                where = tuple((child.pos[c], values) for c, values in count.where)
                child.counted_by.append(
                    (view, view.pos[count.column], tuple(child.pos[b] for b in count.by), where)
                )
        for child in self.views.values():
            positions: dict[int, None] = {}
            for _parent, _col, by, where in child.counted_by:
                positions.update(dict.fromkeys(by))
                positions.update(dict.fromkeys(p for p, _ in where))
            child.contrib = tuple(positions)
        #: views whose rows every action keys by the event's id
        self.event_keyed = {
            name
            for name in self.views
            if all(
                len(action.key) == 1 and action.key[0][1] == "$event_id"
                for event in packs.events.values()
                for action in event.apply
                if action.view == name
            )
            and any(
                action.view == name for event in packs.events.values() for action in event.apply
            )
        }
        self.consts: dict[str, Any] = {}
        lines: list[str] = []
        self.handlers: dict[str, str] = {}
        #: event types whose handler reads the event's id (a replay names it only for them)
        self.reads_event_id: frozenset[str] = frozenset()
        reading: set[str] = set()
        for n, (event_type, event) in enumerate(packs.events.items()):
            fn = f"h{n}"
            self.handlers[event_type] = fn
            body = self._event(fn, event)
            if any("event_id" in line for line in body[1:]):
                reading.add(event_type)
            lines.extend(body)
        self.reads_event_id = frozenset(reading)
        for child in self.views.values():
            if child.counted_by:
                lines.extend(self._adjust(child))
        #: per event type, the function naming the keys a prefetch reads (see Fold._prefetch)
        self.prefetchers: dict[str, str] = {}
        for n, (event_type, event) in enumerate(packs.events.items()):
            wants = self._wants(f"q{n}", event)
            if wants:
                self.prefetchers[event_type] = f"q{n}"
                lines.extend(wants)
        self.source = "\n".join(lines) + "\n"
        self.code = compile(self.source, "<atlasd packs fold>", "exec")

    def const(self, value: Any) -> str:
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def _adjust(self, child: _ViewCode) -> list[str]:
        """``ADJ_child(o, n)``: move a row of ``child`` out of the counts its old values
        (``o``, None: it was not there) put it in, and into those of ``n``."""
        at = {pos: i for i, pos in enumerate(child.contrib)}
        groups: dict[tuple[str, tuple[int, ...]], list[tuple[int, tuple[Any, ...]]]] = {}
        for parent, column, by, where in child.counted_by:
            groups.setdefault((parent.name, by), []).append((column, where))
        out = [f"def ADJ_{child.name}(o, n):"]
        for (parent_name, by), counts in groups.items():
            parent = self.views[parent_name]
            for side in ("o", "n"):
                parts = [f"{side}[{at[p]}]" for p in by]
                key = parts[0] if parent.single else f"({', '.join(parts)},)"
                nulls = " or ".join(f"{part} is None" for part in parts)
                out += [
                    f"    p{side} = None",
                    f"    if {side} is not None and not ({nulls}):",
                    f"        p{side} = {key}",
                ]
            # the same counting row before and after (a status change): one lookup, and
            # the counts without a where cannot change
            out += [
                "    if po is not None and po == pn:",
                *self._bump(parent, "po", counts, at, both=True),
            ]
            out += ["    else:"]
            out += [
                "        if po is not None:",
                *self._bump(parent, "po", counts, at, sign="-", indent=3),
            ]
            out += [
                "        if pn is not None:",
                *self._bump(parent, "pn", counts, at, sign="+", indent=3),
            ]
        return out

    def _bump(
        self,
        parent: _ViewCode,
        key: str,
        counts: list[tuple[int, tuple[Any, ...]]],
        at: dict[int, int],
        *,
        sign: str = "",
        both: bool = False,
        indent: int = 2,
    ) -> list[str]:
        pad = "    " * indent
        lines = [
            f"{pad}pr = C_{parent.name}.get({key})",
            f"{pad}if pr is None:",
            f"{pad}    pr = FIND_{parent.name}({key})",
            f"{pad}if pr is not None:",
            f"{pad}    D_{parent.name}.add({key})",
        ]
        sides = (("o", "-"), ("n", "+")) if both else ((("o" if sign == "-" else "n"), sign),)
        body = []
        for column, where in counts:
            if both and not where:
                continue
            for side, op in sides:
                conds = []
                for pos, allowed in where:
                    value = f"{side}[{at[pos]}]"
                    if all(type(a) is str for a in allowed):
                        allowed_set = self.const(frozenset(allowed))
                        conds.append(f"(type({value}) is str and {value} in {allowed_set})")
                    else:
                        conds.append(f"_when({value}, {self.const(allowed)})")
                if conds:
                    body += [f"if {' and '.join(conds)}:", f"    pr[{column}] {op}= 1"]
                else:
                    body.append(f"pr[{column}] {op}= 1")
        return lines + [f"{pad}    {line}" for line in body or ["pass"]]

    def _wants(self, fn: str, event: EventDef) -> list[str]:
        """``fn(data)``: put in ``W_view`` each key the event upserts in ``view`` that the
        cache lacks (rows keyed by the event's id cannot be stored yet: left out)."""
        plan: dict[tuple[str, tuple[str, ...]], None] = {}
        for action in event.apply:
            if action.op != "upsert" or action.view in self.event_keyed:
                continue
            by_column = dict(action.key)
            sources = tuple(by_column[k] for k in self.views[action.view].view.key)
            if not any(source.startswith("$") for source in sources):  # $event_id, $time
                plan[(action.view, sources)] = None
        if not plan:
            return []
        out = [f"def {fn}(data):"]
        names: dict[str, str] = {}
        for _view, sources in plan:
            for source in sources:
                if source not in names:
                    names[source] = f"a{len(names)}"
                    out.append(f"    {names[source]} = data.get({self.const(source)})")
        for view_name, sources in plan:
            parts = [names[source] for source in sources]
            # SQLite's JSON functions cut a string at NUL: such a key is looked up alone
            good = " and ".join(f"type({a}) is str and {a} and '\\x00' not in {a}" for a in parts)
            key = parts[0] if len(parts) == 1 else f"({', '.join(parts)},)"
            out += [
                f"    if {good}:",
                f"        k = {key}",
                f"        if k not in C_{view_name}:",
                f"            W_{view_name}[k] = None",
            ]
        return out

    def _event(self, fn: str, event: EventDef) -> list[str]:
        out = [f"def {fn}(seq, event_id, data, t):"]
        out.append(f"    if seq <= FROM_{event.pack}: return")
        names: dict[str, str] = {}
        for i, field in enumerate(event.needs):
            var = f"f{i}"
            names[field] = var
            ftype = event.fields[field].type
            out.append(f"    {var} = data.get({self.const(field)})")
            if ftype == "id":
                out.append(f"    if type({var}) is not str or not {var}: return")
            elif ftype == "string":
                out.append(f"    if type({var}) is not str: return")
            else:
                out.append(
                    f"    if {var} is None or not reads_as({self.const(ftype)}, {var}): return"
                )
        out.append("    PENDING[0] += 1")
        previous: Action | None = None
        for action in event.apply:
            # the row the action before fetched, when it is the same one for certain
            reuse = (
                previous is not None
                and previous.op == "upsert"
                and action.op == "upsert"
                and not previous.when
                and previous.view == action.view
                and previous.key == action.key
            )
            out.extend(self._action(action, event, names, reuse=reuse))
            previous = action
        return out

    def _read_stmt(
        self, target: str, source: str, column_type: str, event: EventDef, names: dict[str, str]
    ) -> list[str]:
        """Statements assigning ``source`` read by ``column_type`` to ``target``."""
        if source == "$time":
            if column_type in ("integer", "time", "number", "json"):
                return [f"{target} = t"]
            raw = "t"
        elif source == "$event_id":
            if column_type in ("string", "json"):
                return [f"{target} = event_id"]
            raw = "event_id"
        else:
            var = names.get(source)
            field_type = event.fields[source].type
            if var is not None and column_type == "string" and field_type in ("id", "string"):
                return [f"{target} = {var}"]  # checked by needs already
            if var is not None and column_type == "string_list" and field_type == "string_list":
                return [f"{target} = list({var})"]  # checked by needs already; a copy (_READ)
            if var is not None and column_type == "json":
                return [f"{target} = _own({var})"]
            raw = var if var is not None else f"data.get({self.const(source)})"
        template = _READ[column_type]
        if template.count("{v}") > 1 and not raw.isidentifier():
            return [f"x = {raw}", f"{target} = {template.format(v='x')}"]
        return [f"{target} = {template.format(v=raw)}"]

    def _action(
        self, action: Action, event: EventDef, names: dict[str, str], *, reuse: bool = False
    ) -> list[str]:
        view = self.views[action.view]
        body: list[str] = []
        sources = [names.get(s, "event_id") for _c, s in action.key]
        by_column = dict(zip((c for c, _ in action.key), sources, strict=True))
        if action.op == "remove_matching":
            match = ", ".join(f"({view.pos[c]}, {by_column[c]})" for c, _ in action.key)
            body.append(f"REMOVE_MATCHING_{view.name}(({match},))")
        else:
            ordered = [by_column[k] for k in view.view.key]
            key = ordered[0] if view.single else f"({', '.join(ordered)},)"
            if not reuse:
                body.append(f"k = {key}")
            if action.op == "remove":
                body.append(f"REMOVE_{view.name}(k)")
            else:
                body.extend(self._upsert(action, view, event, names, reuse=reuse))
        if action.when:
            conds = []
            for field, values in action.when:
                if all(type(v) is str for v in values):
                    conds.append(
                        f"(type(x := data.get({self.const(field)})) is str"
                        f" and x in {self.const(frozenset(values))})"
                    )
                else:
                    conds.append(f"_when(data.get({self.const(field)}), {self.const(values)})")
            return [f"    if {' and '.join(conds)}:", *(f"        {line}" for line in body)]
        return [f"    {line}" for line in body]

    def _upsert(
        self,
        action: Action,
        view: _ViewCode,
        event: EventDef,
        names: dict[str, str],
        *,
        reuse: bool = False,
    ) -> list[str]:
        v = view.name
        out = [f"r = C_{v}.get(k)"]
        contrib = view.contrib
        written = {view.pos[c] for c, _ in (*action.set, *action.set_once, *action.add)}
        written |= {view.pos[c] for c in action.increment}
        if reuse:
            # the previous action's row, found or made and marked dirty already
            out = []
            if not written & set(contrib):
                contrib = ()
            else:
                out.append(f"o = ({', '.join(f'r[{p}]' for p in contrib)},)")
        elif contrib:
            now = ", ".join(f"r[{p}]" for p in contrib)
            out += [
                "if r is None:",
                f"    r = GET_{v}(k, seq)",
                # on a cache miss, a new key is a row this action created: not counted yet
                f"    o = None if k in N_{v} else ({now},)",
                "else:",
                f"    o = ({now},)",
            ]
        elif view.name in self.event_keyed:
            # keyed by the event's id: it cannot exist yet (no lookup)
            out = [
                f"r = T_{v}.copy()",
                "r[0] = seq",
                f"r[{view.key_pos[0]}] = k",
                f"C_{v}[k] = r",
                f"N_{v}.add(k)",
            ]
        else:
            out += ["if r is None:", f"    r = GET_{v}(k, seq)"]
        if not reuse:
            out.append(f"D_{v}.add(k)")
        for column, source in action.set:
            out += self._read_stmt(
                f"r[{view.pos[column]}]", source, view.types[column], event, names
            )
        for column, source in action.set_once:
            p = view.pos[column]
            inner = self._read_stmt(f"r[{p}]", source, view.types[column], event, names)
            out += [f"if r[{p}] is None:", *(f"    {line}" for line in inner)]
        for column in action.increment:
            p = view.pos[column]
            out.append(f"r[{p}] = (r[{p}] or 0) + 1")
        for column, source in action.add:
            p = view.pos[column]
            raw = names.get(source) or f"data.get({self.const(source)})"
            if source == "$event_id":
                raw = "event_id"
            out.append(f"r[{p}] = _add(r[{p}], {raw})")
        if contrib:
            now = ", ".join(f"r[{p}]" for p in contrib)
            out += [f"n = ({now},)", "if n != o:", f"    ADJ_{v}(o, n)"]
        return out


_PROGRAMS: dict[int, _Program] = {}


def _program(packs: PackSet) -> _Program:
    program = _PROGRAMS.get(id(packs))
    if program is None or program.packs is not packs:
        program = _Program(packs)
        _PROGRAMS[id(packs)] = program
    return program


class _Rows:
    """One view's rows in a fold: the cache and what changed since the last flush."""

    def __init__(self, fold: Fold, code: _ViewCode, *, remember: bool) -> None:
        self.fold = fold
        self.code = code
        #: keep copies of the stored rows (see ``stored``): not in a rebuild, whose tables
        #: have no secondary indexes while it fills them (a whole-row update costs it
        #: nothing more), nor for a view keyed by event ids (its rows are never updated)
        self.remember = remember
        self.cache: dict[Any, list[Any]] = {}
        self.dirty: set[Any] = set()
        #: keys whose rows are not in the table (insert on flush)
        self.new: set[Any] = set()
        #: keys whose stored rows were removed: key -> row_seq (delete on flush)
        self.removed: dict[Any, int] = {}
        #: hashes of the keys a fresh fold created (a key not among them has no row)
        self.seen: set[int] = set()
        self.known: dict[Any, Any] | None = None
        #: the cached rows as the table holds them (cells shared, not copied), so that a
        #: flush writes only the cells that changed, and no row that did not
        self.stored: dict[Any, tuple[Any, ...]] = {}
        self.fresh = fold.fresh
        self.template = code.template
        #: the key's position in a row, 0 for a key of several columns
        self.key_at = code.key_pos[0] if code.single else 0
        self.key_slice = code.key_slice

    def find(self, key: Any) -> list[Any] | None:
        """The row for a key the cache lacks, from the table (None: there is none)."""
        if key in self.removed:
            return None
        fold = self.fold
        known = self.known
        if known is not None and key in known:
            found = known.pop(key)
        elif self.fresh and hash(key) not in self.seen:
            found = None
        else:
            found = fold.conn.execute(
                self.code.select, key if type(key) is tuple else (key,)
            ).fetchone()
        if found is None:
            return None
        return self._load(key, found)

    def _load(self, key: Any, found: Sequence[Any]) -> list[Any]:
        """Cache a row read from the table."""
        row = self.code.decode(found)
        self.cache[key] = row
        if self.remember:
            self.stored[key] = tuple(row)
        return row

    def get(self, key: Any, seq: int) -> list[Any]:
        """The row for ``key``, made from the view's template when there is none."""
        known = self.known
        if known is not None and key in known and key not in self.removed:
            found = known.pop(key)  # prefetched (None: not stored)
            row = None if found is None else self._load(key, found)
        elif self.fresh and hash(key) not in self.seen and key not in self.removed:
            row = None  # a fresh fold's unseen key has no row (a rebuild's common case)
        else:
            row = self.find(key)
        if row is None:
            row = self.template.copy()
            row[0] = seq
            if self.key_at:
                row[self.key_at] = key
            elif self.key_slice is not None:
                row[self.key_slice] = key
            else:
                for pos, part in zip(self.code.key_pos, key, strict=True):
                    row[pos] = part
            self.cache[key] = row
            self.new.add(key)
            if self.fresh:
                self.seen.add(hash(key))
        return row

    def lookup(self, key: Any) -> list[Any] | None:
        row = self.cache.get(key)
        return row if row is not None else self.find(key)

    def remove(self, key: Any) -> None:
        row = self.lookup(key)
        if row is None:
            return
        if self.code.contrib:
            self.fold.adjusters[self.code.name](tuple(row[p] for p in self.code.contrib), None)
        del self.cache[key]
        self.stored.pop(key, None)
        self.dirty.discard(key)
        if key in self.new:
            self.new.discard(key)
        else:
            self.removed[key] = row[0]

    def remove_matching(self, match: tuple[tuple[int, Any], ...]) -> None:
        code = self.code
        keys: dict[Any, None] = {}
        columns = [quote(name) for name, _ in code.view.columns]
        where = " AND ".join(f"{columns[pos - 1]} = ?" for pos, _ in match)
        params = [
            _encode(value).decode() if code.view.columns[pos - 1][1] in ENCODED_TYPES else value
            for pos, value in match
        ]
        key_names = ", ".join(map(quote, code.view.key))
        for stored in self.fold.conn.execute(
            f"SELECT {key_names} FROM {code.table} WHERE {where}", params
        ):
            key = stored[0] if code.single else tuple(stored)
            if key not in self.removed and key not in self.cache:
                keys[key] = None
        for key, row in self.cache.items():
            if all(_same(row[pos], value) for pos, value in match):
                keys[key] = None
        for key in keys:
            found = self.lookup(key)
            if found is not None and all(_same(found[pos], value) for pos, value in match):
                self.remove(key)

    def flush(self) -> None:
        conn, code = self.fold.conn, self.code
        if self.removed:
            conn.executemany(code.delete, [(row_seq,) for row_seq in self.removed.values()])
        inserts = []
        # rows grouped by the cells that changed: one UPDATE per group, naming only those
        updates: dict[tuple[int, ...], list[list[Any]]] = {}
        rest, rest_set, positions = code.rest, code.rest_set, code.positions
        new, cache, stored = self.new, self.cache, self.stored
        keep = self.remember
        encode = code.encode if code.encoded else None
        for key in self.dirty:
            row = cache[key]
            if key in new:
                if keep:
                    stored[key] = tuple(row)
                inserts.append(encode(row) if encode else row)
                continue
            before = stored.get(key)
            if keep:
                stored[key] = tuple(row)
            if before is None:
                changed = rest
            else:
                # the cells that are other objects than the table's (found in C), then
                # those of them that hold something else
                changed = tuple(
                    [
                        i
                        for i in compress(positions, map(is_not, before, row))
                        if i in rest_set and _changed(before[i], row[i])
                    ]
                )
                if not changed:
                    continue
            batch = updates.get(changed)
            if batch is None:
                batch = updates[changed] = []
            batch.append(row)
        for changed, batch in updates.items():
            params = code.update_params_of(changed)
            conn.executemany(code.update_of(changed), [params(row) for row in batch])
        if inserts:
            # in row_seq order (a set's is its hashes'): each row goes at the table's end
            inserts.sort(key=_first)
            conn.executemany(code.insert, inserts)
        self.dirty.clear()
        self.new.clear()
        self.removed.clear()

    def forget(self) -> None:
        """Drop the cached rows (the table keeps them)."""
        self.cache.clear()
        self.stored.clear()


_first = operator.itemgetter(0)


def _changed(before: Any, after: Any) -> bool:
    """A cell that is another object than the table's holds something else, unless both
    are equal strings or integers (a bool is never taken for an integer, nor a list
    compared deeply: ``[1] == [True]`` in Python, not in JSON)."""
    t = type(before)
    return not ((t is str or t is int) and type(after) is t and before == after)


def _nest_keys(keys: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    """Keys of several parts as nested JSON objects: each part but the last names a member,
    the last parts are the items of a list (``("a", "x"), ("a", "y")`` is ``{"a": ["x", "y"]}``)."""
    out: dict[str, Any] = {}
    for key in keys:
        node = out
        for part in key[:-2]:
            node = node.setdefault(part, {})
        node.setdefault(key[-2], []).append(key[-1])
    return out


class Fold:
    """Applies events to the pack views through an in-memory row cache.

    ``from_seq`` maps a view name to the seq it has already applied: events at
    or below it are skipped. The views of one pack are folded together, from
    the same seq (events touch several of them and counts tie them together).

    ``fresh``: the views were empty when this fold started (a rebuild), so a
    key this fold has not seen has no row yet and is not looked up.
    ``keep_rows``: rows kept in the cache across :meth:`flush` (written ones
    are clean), so that a replay finds recent rows without reading them back.

    Resource handling: the cache holds the rows touched since the last
    :meth:`flush` plus at most ``keep_rows`` kept ones; a ``fresh`` fold also
    remembers each key it created. Callers flush every few thousand events.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        packs: PackSet,
        from_seq: dict[str, int],
        *,
        fresh: bool = False,
        keep_rows: int = 0,
    ) -> None:
        program = _program(packs)
        self.conn = conn
        self.packs = packs
        self.views = tuple(from_seq)
        self.fresh = fresh
        self._keep_rows = keep_rows
        self._pending = [0]
        pack_from: dict[str, int] = {}
        for name, seq in from_seq.items():
            pack_name = packs.pack_of_view[name].name
            if pack_from.setdefault(pack_name, seq) != seq:
                raise ValueError(f"the views of pack {pack_name} are folded together, from one seq")
        for pack_name in pack_from:
            missing = [
                v
                for v in packs.pack_of_view
                if packs.pack_of_view[v].name == pack_name and v not in from_seq
            ]
            if missing:
                raise ValueError(f"pack {pack_name}: views {', '.join(missing)} must be folded too")
        self.rows: dict[str, _Rows] = {
            name: _Rows(
                self,
                program.views[name],
                remember=not fresh and name not in program.event_keyed,
            )
            for name in packs.views
        }
        ns: dict[str, Any] = {
            "_int": _int,
            "_strlist": _strlist,
            "_strlist_copy": _strlist_copy,
            "_own": _own,
            "_add": _add,
            "_when": _when,
            "reads_as": reads_as,
            "PENDING": self._pending,
            **program.consts,
        }
        for pack in packs.packs:
            ns[f"FROM_{pack.name}"] = pack_from.get(pack.name, _NEVER)
        #: keys a prefetch is to read, per view (filled by the generated ``q`` functions)
        self._wanted: dict[str, dict[Any, None]] = {name: {} for name in self.rows}
        for name, rows in self.rows.items():
            ns[f"W_{name}"] = self._wanted[name]
            ns[f"C_{name}"] = rows.cache
            ns[f"D_{name}"] = rows.dirty
            ns[f"N_{name}"] = rows.new
            ns[f"T_{name}"] = rows.template
            ns[f"GET_{name}"] = rows.get
            ns[f"FIND_{name}"] = rows.find
            ns[f"REMOVE_{name}"] = rows.remove
            ns[f"REMOVE_MATCHING_{name}"] = rows.remove_matching
        exec(program.code, ns)  # the generated source: see _Program
        self.adjusters: dict[str, Callable[[Any, Any], None]] = {
            name: ns[f"ADJ_{name}"] for name in self.rows if f"ADJ_{name}" in ns
        }
        self._handlers: dict[str, Callable[[int, str, dict[str, Any], int], None]] = {
            event_type: ns[fn]
            for event_type, fn in program.handlers.items()
            if packs.events[event_type].pack in pack_from
        }
        self._program = program
        self._prefetchers: dict[str, Callable[[dict[str, Any]], None]] = {
            event_type: ns[fn]
            for event_type, fn in program.prefetchers.items()
            if event_type in self._handlers
        }

    @property
    def reads_event_id(self) -> frozenset[str]:
        """The event types whose fold reads the event's id: :meth:`apply_many` may be
        given any string as the id of an event of another type."""
        return self._program.reads_event_id

    @property
    def pending(self) -> int:
        """Events projected since the last flush."""
        return self._pending[0]

    def apply(self, seq: int, event_id: str, event_type: str, data: dict[str, Any], t: int) -> None:
        """Fold one event (any type; types no pack defines change nothing)."""
        handler = self._handlers.get(event_type)
        if handler is not None:
            handler(seq, event_id, data, t)

    def apply_many(self, events: Sequence[FoldEvent]) -> None:
        if not self.fresh and len(events) >= _PREFETCH_MIN:
            self._prefetch(events)
        handlers = self._handlers
        try:
            for seq, event_id, event_type, data, t in events:
                handler = handlers.get(event_type)
                if handler is not None:
                    handler(seq, event_id, data, t)
        finally:
            for rows in self.rows.values():
                rows.known = None

    def _prefetch(self, events: Sequence[FoldEvent]) -> None:
        """Read the stored rows of every key these events upsert and the cache lacks, with
        one statement per view; :meth:`_Rows.find` then answers from them."""
        prefetchers = self._prefetchers
        for _seq, _event_id, event_type, data, _t in events:
            wants = prefetchers.get(event_type)
            if wants is not None:
                wants(data)
        wanted = self._wanted
        try:
            if sum(len(keys) for keys in wanted.values()) < _PREFETCH_MIN:
                return
            for view, keys in wanted.items():
                if not keys:
                    continue
                rows = self.rows[view]
                code = rows.code
                found: dict[Any, Any] = dict.fromkeys(keys)  # None: not stored
                param = _encode(list(keys) if code.single else _nest_keys(keys)).decode()
                stored = self.conn.execute(code.select_many, (param,))
                if code.single:
                    at = code.key_pos[0]
                    for row in stored:
                        found[row[at]] = row
                else:
                    for row in stored:
                        found[code.key_of(row)] = row
                rows.known = found
        finally:
            for keys in wanted.values():
                keys.clear()

    def flush(self, checkpoint: int | None = None) -> None:
        """Write every changed row and record ``checkpoint`` for the views."""
        cached = 0
        event_keyed = self._program.event_keyed
        for name, rows in self.rows.items():
            if rows.dirty or rows.removed:
                rows.flush()
            else:
                rows.new.clear()
            if name in event_keyed:
                rows.forget()  # one row per event: never looked up again
            else:
                cached += len(rows.cache)
        if cached > self._keep_rows:
            for rows in self.rows.values():
                rows.forget()
        self._pending[0] = 0
        if checkpoint is not None:
            self.conn.executemany(_CHECKPOINT, [(checkpoint, view) for view in self.views])
