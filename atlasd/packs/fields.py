"""The append-time schema of pack event types (docs/views.md "The append-time schema").

Pure functions of the data, with no store behind them: the daemon runs them
in the store's prepare step (socket, spool, import) and the Python client
runs the same ones before it spools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atlasd.errors import InvalidValue
from atlasd.packs.model import EventDef, Field

__all__ = ["check_data", "field_error", "reads_as"]


def reads_as(field_type: str, value: Any) -> bool:
    """Whether a non-null ``value`` is of the field type."""
    t = type(value)
    if field_type == "id":
        return t is str and bool(value)
    if field_type == "string":
        return t is str
    if field_type == "integer":
        return t is int or (t is float and value.is_integer())
    if field_type == "number":
        return t is int or t is float
    if field_type == "boolean":
        return t is bool
    if field_type == "object":
        return t is dict
    if field_type == "array":
        return t is list
    if field_type == "string_list":
        return t is list and all(type(item) is str for item in value)
    return value is not None  # any


def _same(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1, 1 equals 1.0
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def field_error(name: str, field: Field, data: Mapping[str, Any]) -> str | None:
    """The message for one field, or None when it passes."""
    value = data.get(name)
    if value is None:
        return f"data.{name}: required" if field.required else None
    if not reads_as(field.type, value):
        return f"data.{name}: expected {field.type}"
    if field.enum is not None and not any(_same(value, allowed) for allowed in field.enum):
        listed = ", ".join(a if type(a) is str else _json_scalar(a) for a in field.enum)
        return f"data.{name}: expected one of {listed}"
    return None


def _json_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def check_data(event: EventDef, data: Mapping[str, Any]) -> None:
    """:class:`InvalidValue` for the first field (in definition order) that fails."""
    for name, field in event.fields.items():
        message = field_error(name, field, data)
        if message is not None:
            raise InvalidValue(message)
