"""The checked form of a pack (docs/views.md "The pack format").

Built by :mod:`atlasd.packs.loader` from a file that passed every check, so
the engine and the validator can trust it: every name it holds exists,
every source is defined, every count is anchored.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "COLUMN_TYPES",
    "FIELD_TYPES",
    "Action",
    "ColumnType",
    "Count",
    "EventDef",
    "Field",
    "FieldType",
    "Pack",
    "View",
]

ColumnType = Literal["string", "integer", "number", "boolean", "string_list", "json", "time"]
FieldType = Literal[
    "id", "string", "integer", "number", "boolean", "object", "array", "string_list", "any"
]
COLUMN_TYPES: tuple[str, ...] = (
    "string",
    "integer",
    "number",
    "boolean",
    "string_list",
    "json",
    "time",
)
FIELD_TYPES: tuple[str, ...] = (
    "id",
    "string",
    "integer",
    "number",
    "boolean",
    "object",
    "array",
    "string_list",
    "any",
)


class Count(msgspec.Struct, frozen=True, kw_only=True):
    """A column that counts the rows of ``view`` whose ``by`` columns equal this
    row's key (and whose ``where`` columns hold one of the listed values)."""

    column: str
    view: str
    by: tuple[str, ...]
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()


class View(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    pack: str
    key: tuple[str, ...]
    #: Output columns in order, with their types.
    columns: tuple[tuple[str, ColumnType], ...]
    initial: dict[str, Any]
    counts: tuple[Count, ...]
    time: str
    indexes: tuple[tuple[str, ...], ...]


class Field(msgspec.Struct, frozen=True, kw_only=True):
    type: FieldType
    required: bool
    enum: tuple[Any, ...] | None = None


class Action(msgspec.Struct, frozen=True, kw_only=True):
    op: Literal["upsert", "remove", "remove_matching"]
    view: str
    #: (column, source) for the key (upsert, remove) or the match (remove_matching).
    key: tuple[tuple[str, str], ...]
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    set: tuple[tuple[str, str], ...] = ()
    set_once: tuple[tuple[str, str], ...] = ()
    increment: tuple[str, ...] = ()
    add: tuple[tuple[str, str], ...] = ()


class EventDef(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    pack: str
    stream: str
    fields: dict[str, Field]
    needs: tuple[str, ...]
    apply: tuple[Action, ...]


class Pack(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    views: dict[str, View]
    events: dict[str, EventDef]
    #: Content version: 52 bits of the SHA-256 of the canonical JSON.
    version: int
    #: Where it was loaded from (a file path, or ``builtin:NAME``).
    origin: str
