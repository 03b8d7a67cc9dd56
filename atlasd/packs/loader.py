"""Loading and checking pack files (docs/views.md "Checking a pack").

Every check names the file and the line of the offending member, so an
operator's typo stops start-up with ``packs/mine.json:14: ...`` rather than a
view that silently never fills. Built-in packs go through the same checks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path as FsPath
from typing import Any, NoReturn, cast

from atlasd.packs.model import (
    COLUMN_TYPES,
    FIELD_TYPES,
    Action,
    ColumnType,
    Count,
    EventDef,
    Field,
    FieldType,
    Pack,
    View,
)
from atlasd.packs.source import PackSyntaxError, Path, parse_with_lines

__all__ = [
    "BUILTIN_PACKS",
    "MAX_PACK_BYTES",
    "PackError",
    "check_pack_set",
    "load_builtin_packs",
    "load_pack_dir",
    "load_pack_text",
]

BUILTIN_PACKS: tuple[str, ...] = ("atlas", "mastra", "workflows", "assets", "deployments", "agents")
MAX_PACK_BYTES = 1 << 20

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_FIELD = re.compile(r"[ -~]{1,1024}")
_SOURCES = ("$time", "$event_id")


class PackError(ValueError):
    """A pack that cannot be used; ``str()`` is ``FILE:LINE: reason``."""

    def __init__(self, origin: str, line: int, reason: str) -> None:
        super().__init__(f"{origin}:{line}: {reason}")
        self.origin = origin
        self.line = line
        self.reason = reason


def content_version(value: Any) -> int:
    """52 bits of the SHA-256 of the canonical JSON (keys sorted, no whitespace)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return int(hashlib.sha256(canonical.encode()).hexdigest()[:13], 16)


def _is_scalar(value: Any) -> bool:
    return value is None or type(value) in (str, int, float, bool)


def _fits(column_type: str, value: Any) -> bool:
    t = type(value)
    if column_type == "string":
        return t is str
    if column_type in ("integer", "time"):
        return t is int
    if column_type == "number":
        return t is int or t is float
    if column_type == "boolean":
        return t is bool
    if column_type == "string_list":
        return t is list and all(type(item) is str for item in value)
    return True  # json


class _Checker:
    def __init__(self, origin: str, lines: dict[Path, int]) -> None:
        self.origin = origin
        self.lines = lines

    def fail(self, path: Path, reason: str) -> NoReturn:
        while path and path not in self.lines:
            path = path[:-1]
        raise PackError(self.origin, self.lines.get(path, 1), reason)

    def where(self, path: Path) -> str:
        return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")

    def obj(
        self, value: Any, path: Path, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict[str, Any]:
        if type(value) is not dict:
            self.fail(path, f"{self.where(path) or 'the pack'} must be an object")
        for name in value:
            if (required or optional) and name not in required and name not in optional:
                allowed = ", ".join((*required, *optional))
                self.fail((*path, name), f"unknown member {name!r} (allowed: {allowed})")
        for name in required:
            if name not in value:
                self.fail(path, f"{self.where(path) or 'the pack'} lacks {name!r}")
        return cast(dict[str, Any], value)

    def name(self, value: Any, path: Path, what: str) -> str:
        if type(value) is not str or not _NAME.fullmatch(value):
            self.fail(path, f"{what} {value!r:.80} must match [a-z][a-z0-9_]{{0,62}}")
        return cast(str, value)

    def names(self, value: Any, path: Path, what: str, allowed: Iterable[str]) -> tuple[str, ...]:
        allowed = tuple(allowed)
        if type(value) is not list:
            self.fail(path, f"{self.where(path)} must be a list of {what}")
        for i, item in enumerate(value):
            if item not in allowed:
                self.fail((*path, i), f"{self.where(path)}: no {what} {item!r:.80}")
        if len(set(value)) != len(value):
            self.fail(path, f"{self.where(path)} repeats a name")
        return tuple(value)

    def values(self, value: Any, path: Path) -> tuple[Any, ...]:
        if type(value) is not list or not value or not all(_is_scalar(v) for v in value):
            self.fail(path, f"{self.where(path)} must be a non-empty list of JSON scalars")
        return tuple(value)

    # -- the pack ---------------------------------------------------------------

    def pack(self, raw: Any, version: int) -> Pack:
        top = self.obj(raw, (), ("pack", "views", "events"), ("description",))
        name = self.name(top["pack"], ("pack",), "pack name")
        description = top.get("description", "")
        if type(description) is not str:
            self.fail(("description",), "description must be a string")
        views_raw = self.obj(top["views"], ("views",), ())
        views: dict[str, View] = {}
        for view_name, view_raw in views_raw.items():
            views[view_name] = self.view(name, view_name, view_raw, ("views", view_name))
        for view in views.values():
            for i, count in enumerate(view.counts):
                self.count_target(
                    view, count, views, ("views", view.name, "counts", count.column), i
                )
        events_raw = self.obj(top["events"], ("events",), ())
        events: dict[str, EventDef] = {}
        for event_type, event_raw in events_raw.items():
            path: Path = ("events", event_type)
            if not _TYPE.fullmatch(event_type):
                self.fail(path, f"event type {event_type!r:.80} must be 1..100 of [A-Za-z0-9_.:-]")
            events[event_type] = self.event(name, event_type, event_raw, views, path)
        return Pack(
            name=name,
            description=description,
            views=views,
            events=events,
            version=version,
            origin=self.origin,
        )

    def view(self, pack: str, name: str, raw: Any, path: Path) -> View:
        self.name(name, path, "view name")
        spec = self.obj(raw, path, ("key", "columns", "time"), ("initial", "counts", "indexes"))
        columns_raw = self.obj(spec["columns"], (*path, "columns"), ())
        if not columns_raw:
            self.fail((*path, "columns"), "a view needs columns")
        columns: list[tuple[str, ColumnType]] = []
        for column, column_type in columns_raw.items():
            self.name(column, (*path, "columns", column), "column name")
            if column in ("row_seq", "origin"):
                self.fail((*path, "columns", column), f"column name {column!r} is reserved")
            if column_type not in COLUMN_TYPES:
                self.fail(
                    (*path, "columns", column),
                    f"column {column}: type {column_type!r:.40} is not one of "
                    + ", ".join(COLUMN_TYPES),
                )
            columns.append((column, column_type))
        types = dict(columns)
        key = self.names(spec["key"], (*path, "key"), "column", types)
        if not key:
            self.fail((*path, "key"), "key must name at least one column")
        for column in key:
            if types[column] != "string":
                self.fail((*path, "key"), f"key column {column} must be of type string")
        time = spec["time"]
        if time not in types or types[time] != "time":
            self.fail((*path, "time"), f"time {time!r:.80} must name a column of type time")
        initial = self.obj(spec.get("initial", {}), (*path, "initial"), ())
        for column, value in initial.items():
            if column not in types or column in key:
                self.fail((*path, "initial", column), f"initial: no non-key column {column!r}")
            if value is not None and not _fits(types[column], value):
                self.fail((*path, "initial", column), f"initial {column}: not a {types[column]}")
        counts_raw = self.obj(spec.get("counts", {}), (*path, "counts"), ())
        counts: list[Count] = []
        for column, count_raw in counts_raw.items():
            cpath = (*path, "counts", column)
            if column not in types or types[column] != "integer" or column in key:
                self.fail(cpath, f"counts: {column!r} must be a non-key integer column")
            if column in initial:
                self.fail(cpath, f"counts: {column} starts at 0; it cannot have an initial value")
            count = self.obj(count_raw, cpath, ("view", "by"), ("where",))
            if type(count["view"]) is not str:
                self.fail((*cpath, "view"), "counts: view must be a view name")
            by = count["by"]
            if type(by) is not list or not all(type(b) is str for b in by) or len(by) != len(key):
                self.fail((*cpath, "by"), f"counts: by must list {len(key)} column name(s)")
            where_raw = self.obj(count.get("where", {}), (*cpath, "where"), ())
            where = tuple((c, self.values(v, (*cpath, "where", c))) for c, v in where_raw.items())
            counts.append(Count(column=column, view=count["view"], by=tuple(by), where=where))
        indexes_raw = spec.get("indexes", [])
        if type(indexes_raw) is not list:
            self.fail((*path, "indexes"), "indexes must be a list of column lists")
        indexes = []
        for i, index in enumerate(indexes_raw):
            names = self.names(index, (*path, "indexes", i), "column", types)
            if not names:
                self.fail((*path, "indexes", i), "an index needs a column")
            indexes.append(names)
        return View(
            name=name,
            pack=pack,
            key=key,
            columns=tuple(columns),
            initial=dict(initial),
            counts=tuple(counts),
            time=time,
            indexes=tuple(indexes),
        )

    def count_target(
        self, view: View, count: Count, views: dict[str, View], path: Path, _i: int
    ) -> None:
        target = views.get(count.view)
        if target is None:
            self.fail((*path, "view"), f"counts: no view {count.view!r:.80} in this pack")
        if target.name == view.name:
            self.fail((*path, "view"), "counts: a view cannot count its own rows")
        target_types = dict(target.columns)
        for column in count.by:
            if column not in target_types:
                self.fail((*path, "by"), f"counts: view {target.name} has no column {column!r}")
        for column, _values in count.where:
            if column not in target_types:
                self.fail((*path, "where"), f"counts: view {target.name} has no column {column!r}")

    # -- events -----------------------------------------------------------------

    def event(
        self, pack: str, event_type: str, raw: Any, views: dict[str, View], path: Path
    ) -> EventDef:
        spec = self.obj(raw, path, ("stream", "fields", "needs", "apply"))
        stream = spec["stream"]
        if type(stream) is not str or not stream:
            self.fail((*path, "stream"), "stream must be a non-empty template string")
        fields_raw = self.obj(spec["fields"], (*path, "fields"), ())
        fields: dict[str, Field] = {}
        for field_name, field_raw in fields_raw.items():
            fpath = (*path, "fields", field_name)
            if not _FIELD.fullmatch(field_name) or field_name.startswith("$"):
                self.fail(fpath, f"field name {field_name!r:.80} cannot be stored")
            field = self.obj(field_raw, fpath, ("type", "required"), ("enum",))
            if field["type"] not in FIELD_TYPES:
                self.fail(
                    (*fpath, "type"),
                    f"field {field_name}: type {field['type']!r:.40} is not one of "
                    + ", ".join(FIELD_TYPES),
                )
            if type(field["required"]) is not bool:
                self.fail((*fpath, "required"), f"field {field_name}: required must be a boolean")
            enum = self.values(field["enum"], (*fpath, "enum")) if "enum" in field else None
            fields[field_name] = Field(
                type=cast(FieldType, field["type"]), required=field["required"], enum=enum
            )
        for name in re.findall(r"\{([^{}]*)\}", stream):
            if name not in fields:
                self.fail((*path, "stream"), f"stream template names no field {name!r:.80}")
        needs = self.names(spec["needs"], (*path, "needs"), "field", fields)
        apply_raw = spec["apply"]
        if type(apply_raw) is not list:
            self.fail((*path, "apply"), "apply must be a list of actions")
        actions: list[Action] = []
        for i, action_raw in enumerate(apply_raw):
            actions.append(self.action(action_raw, fields, needs, views, (*path, "apply", i)))
        self.count_rules(actions, views, (*path, "apply"))
        return EventDef(
            type=event_type,
            pack=pack,
            stream=stream,
            fields=fields,
            needs=needs,
            apply=tuple(actions),
        )

    def source(self, value: Any, fields: dict[str, Field], path: Path) -> str:
        if type(value) is not str or (value not in fields and value not in _SOURCES):
            self.fail(
                path, f"source {value!r:.80} is not a field of this event, $time or $event_id"
            )
        return cast(str, value)

    def columns_map(
        self,
        raw: Any,
        fields: dict[str, Field],
        view: View,
        path: Path,
    ) -> tuple[tuple[str, str], ...]:
        mapping = self.obj(raw, path, ())
        types = dict(view.columns)
        out = []
        for column, source in mapping.items():
            if column not in types:
                self.fail((*path, column), f"view {view.name} has no column {column!r:.80}")
            out.append((column, self.source(source, fields, (*path, column))))
        return tuple(out)

    def action(
        self,
        raw: Any,
        fields: dict[str, Field],
        needs: tuple[str, ...],
        views: dict[str, View],
        path: Path,
    ) -> Action:
        if type(raw) is not dict:
            self.fail(path, "an action must be an object")
        op = raw.get("op")
        if op == "upsert":
            spec = self.obj(
                raw, path, ("op", "view", "key"), ("when", "set", "set_once", "increment", "add")
            )
        elif op == "remove":
            spec = self.obj(raw, path, ("op", "view", "key"), ("when",))
        elif op == "remove_matching":
            spec = self.obj(raw, path, ("op", "view", "match"), ("when",))
        else:
            self.fail((*path, "op"), f"op {op!r:.40} is not upsert, remove or remove_matching")
        view = views.get(spec["view"]) if type(spec["view"]) is str else None
        if view is None:
            self.fail((*path, "view"), f"no view {spec['view']!r:.80} in this pack")
        types = dict(view.columns)
        counted = {count.column for count in view.counts}
        member = "match" if op == "remove_matching" else "key"
        key = self.columns_map(spec[member], fields, view, (*path, member))
        if op != "remove_matching" and tuple(sorted(c for c, _ in key)) != tuple(sorted(view.key)):
            self.fail((*path, "key"), f"key must name each key column of {view.name}: {view.key}")
        if not key:
            self.fail((*path, member), f"{member} must name at least one column")
        for column, source in key:
            kpath = (*path, member, column)
            if source == "$time":
                self.fail(kpath, f"{member} source cannot be $time")
            if source != "$event_id" and source not in needs:
                self.fail(kpath, f"{member} source {source!r} must be listed in needs")
            if member == "key" and source != "$event_id" and fields[source].type != "id":
                self.fail(kpath, f"key source {source!r} must be a field of type id")
        when_raw = self.obj(spec.get("when", {}), (*path, "when"), ())
        when = []
        for field_name, values in when_raw.items():
            if field_name not in fields:
                self.fail((*path, "when", field_name), f"when: no field {field_name!r:.80}")
            when.append((field_name, self.values(values, (*path, "when", field_name))))
        sets = self.columns_map(spec.get("set", {}), fields, view, (*path, "set"))
        set_once = self.columns_map(spec.get("set_once", {}), fields, view, (*path, "set_once"))
        add = self.columns_map(spec.get("add", {}), fields, view, (*path, "add"))
        for member_name, pairs in (("set", sets), ("set_once", set_once), ("add", add)):
            for column, _source in pairs:
                if column in view.key:
                    self.fail((*path, member_name, column), f"{member_name}: {column} is a key")
                if column in counted:
                    self.fail((*path, member_name, column), f"{member_name}: {column} is a count")
        for column, _source in add:
            if types[column] != "string_list":
                self.fail((*path, "add", column), f"add: {column} is not a string_list column")
        increment = self.names(spec.get("increment", []), (*path, "increment"), "column", types)
        for i, column in enumerate(increment):
            if types[column] != "integer" or column in counted:
                self.fail((*path, "increment", i), f"increment: {column} is not a plain integer")
        return Action(
            op=op,
            view=view.name,
            key=key,
            when=tuple(when),
            set=sets,
            set_once=set_once,
            increment=increment,
            add=add,
        )

    def count_rules(self, actions: list[Action], views: dict[str, View], path: Path) -> None:
        """The two rules that keep counting rows in place (docs/views.md "Derived counts")."""
        counts_over: dict[str, list[tuple[View, Count]]] = {}
        for view in views.values():
            for count in view.counts:
                counts_over.setdefault(count.view, []).append((view, count))
        for i, action in enumerate(actions):
            if action.op == "upsert":
                for parent, count in counts_over.get(action.view, ()):
                    sources = dict(action.key) | dict(action.set)
                    for column in count.by:
                        if column in dict(action.set_once) or column in dict(action.add):
                            self.fail(
                                (*path, i),
                                f"{column} is counted by {parent.name}: "
                                "write it through key or set",
                            )
                    wanted = tuple(sources.get(column) for column in count.by)
                    anchored = any(
                        earlier.op == "upsert"
                        and earlier.view == parent.name
                        and tuple(dict(earlier.key)[k] for k in parent.key) == wanted
                        for earlier in actions[:i]
                    )
                    if not anchored:
                        self.fail(
                            (*path, i),
                            f"rows of {action.view} are counted by {parent.name}: upsert the "
                            f"{parent.name} row (key from {', '.join(str(w) for w in wanted)}) "
                            "in an earlier action",
                        )
            elif action.op == "remove":
                parent = views[action.view]
                for count in parent.counts:
                    keyed = dict(action.key)
                    wanted_match = {b: keyed[k] for b, k in zip(count.by, parent.key, strict=True)}
                    cleared = any(
                        earlier.op == "remove_matching"
                        and earlier.view == count.view
                        and dict(earlier.key) == wanted_match
                        for earlier in actions[:i]
                    )
                    if not cleared:
                        self.fail(
                            (*path, i),
                            f"{parent.name} counts rows of {count.view}: remove_matching them "
                            "in an earlier action before removing the row",
                        )


def load_pack_text(text: str, origin: str) -> Pack:
    """Parse and check one pack; :class:`PackError` names ``origin`` and the line."""
    try:
        raw, lines = parse_with_lines(text)
    except PackSyntaxError as exc:
        raise PackError(origin, exc.line, f"not JSON: {exc.message}") from None
    return _Checker(origin, lines).pack(raw, content_version(raw))


def load_builtin_packs() -> list[Pack]:
    folder = resources.files("atlasd.packs") / "builtin"
    return [
        load_pack_text((folder / f"{name}.json").read_text("utf-8"), f"builtin:{name}.json")
        for name in BUILTIN_PACKS
    ]


def load_pack_dir(directory: FsPath) -> list[Pack]:
    """Every ``*.json`` pack in ``directory`` in name order (none when it is missing)."""
    try:
        paths = sorted(p for p in directory.iterdir() if p.name.endswith(".json"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PackError(str(directory), 1, f"cannot list the packs directory: {exc}") from None
    packs = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_PACK_BYTES + 1)
        except OSError as exc:
            raise PackError(str(path), 1, f"cannot read: {exc.strerror or exc}") from None
        if len(data) > MAX_PACK_BYTES:
            raise PackError(str(path), 1, f"larger than {MAX_PACK_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PackError(str(path), 1, f"not UTF-8: {exc.reason}") from None
        packs.append(load_pack_text(text, str(path)))
    return packs


def check_pack_set(packs: Sequence[Pack]) -> None:
    """Names are unique across packs: pack names, view names, event types."""
    seen_packs: dict[str, str] = {}
    seen_views: dict[str, str] = {}
    seen_types: dict[str, str] = {}
    for pack in packs:
        if pack.name in seen_packs:
            raise PackError(
                pack.origin, 1, f"pack {pack.name} is also defined by {seen_packs[pack.name]}"
            )
        seen_packs[pack.name] = pack.origin
        for view in pack.views:
            if view in seen_views:
                raise PackError(
                    pack.origin, 1, f"view {view} is also defined by {seen_views[view]}"
                )
            seen_views[view] = pack.origin
        for event_type in pack.events:
            if event_type in seen_types:
                raise PackError(
                    pack.origin,
                    1,
                    f"event type {event_type} is also defined by {seen_types[event_type]}",
                )
            seen_types[event_type] = pack.origin
