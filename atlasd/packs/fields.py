"""The append-time schema of pack event types (docs/views.md "The append-time schema").

Pure functions of the data, with no store behind them: the daemon runs them
in the store's prepare step (socket, spool, import) and the Python client
runs the same ones before it spools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from atlasd.errors import InvalidValue
from atlasd.packs.model import EventDef, Field

__all__ = ["check_data", "compile_checker", "field_error", "reads_as"]


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


# The same checks as one generated function per event type: the daemon runs them on
# every append, where a loop over field descriptions costs several times more.
_TEST = {
    "id": "type(v) is str and v != ''",
    "string": "type(v) is str",
    "integer": "type(v) is int or (type(v) is float and v.is_integer())",
    "number": "type(v) is int or type(v) is float",
    "boolean": "type(v) is bool",
    "object": "type(v) is dict",
    "array": "type(v) is list",
    "string_list": "reads_as('string_list', v)",
    "any": "True",
}


def compile_checker(event: EventDef) -> Callable[[Mapping[str, Any]], str | None]:
    """A function of the data giving the first failing field's message, or None."""
    consts: dict[str, Any] = {"reads_as": reads_as, "field_error": field_error}
    lines = ["def check(data):"]
    for i, (name, field) in enumerate(event.fields.items()):
        consts[f"N{i}"] = name
        consts[f"F{i}"] = field
        lines.append(f"    v = data.get(N{i})")
        if field.required:
            lines.append("    if v is None:")
            lines.append(f"        return field_error(N{i}, F{i}, data)")
            lines.append(f"    if not ({_TEST[field.type]}):")
        else:
            lines.append(f"    if v is not None and not ({_TEST[field.type]}):")
        lines.append(f"        return field_error(N{i}, F{i}, data)")
        if field.enum is not None and all(type(a) is str for a in field.enum):
            consts[f"E{i}"] = frozenset(field.enum)
            lines.append(f"    if v is not None and v not in E{i}:")
            lines.append(f"        return field_error(N{i}, F{i}, data)")
        elif field.enum is not None:
            lines.append(f"    if v is not None and field_error(N{i}, F{i}, data) is not None:")
            lines.append(f"        return field_error(N{i}, F{i}, data)")
    lines.append("    return None")
    exec(compile("\n".join(lines) + "\n", f"<atlasd schema {event.type}>", "exec"), consts)
    checker: Callable[[Mapping[str, Any]], str | None] = consts["check"]
    return checker
