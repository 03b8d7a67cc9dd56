"""Append-time checks that every event is one Convex can store (docs/eventlog.md).

Rules, each refused with :class:`InvalidValue` naming the offending path
(``data.steps[3].$ref``):

- ``stream``: 1..200 characters, no control characters (C0, DEL, C1).
- ``type``: 1..100 characters of ``[A-Za-z0-9_.:-]``.
- ``data`` (and ``meta`` when given): an object; field names of 1..1024
  printable ASCII characters (space to ``~``) not starting with ``$`` and
  not ``__proto__`` (JavaScript drops that key when it copies an object, so
  the remote would store something else);
  integers within -2**53..2**53 inclusive; floats finite; arrays of at most
  8192 items; objects of at most 1024 fields; only JSON values (strings,
  numbers, booleans, null, arrays, objects).
- Nesting: the *depth* of a value is 0 for a scalar and 1 + the depth of its
  deepest item for an array or object (``{}`` is 1, ``{"a": [1]}`` is 2).
  ``data`` and ``meta`` may each be at most :data:`MAX_VALUE_DEPTH` = 15 deep,
  so that the stored Convex event document, which holds them one level down,
  stays within Convex's 16 levels.
- The encoded event (checked by the writer once seq and hash are known) is at
  most :data:`MAX_EVENT_BYTES`, and the document Convex would store is at
  most :data:`MAX_DOCUMENT_BYTES` as Convex counts it
  (:func:`check_document_size`: every number 9 bytes, a string 2 + its UTF-8
  bytes, ... plus its system fields), which a JSON length does not bound.

Numbers have one text on both sides of the sync: a float with an integral
value within +/-2**53 is stored as that integer (``1.0`` -> ``1``, ``-0.0``
-> ``0``), as JavaScript, with a single number type, cannot tell them apart;
the remote recomputes each event's hash from the values it received, so
the log must hold exactly what the remote can see.

String lengths (``stream``) count code points, on both sides.

:func:`validate_new_event` applies all of these to one event asked for. It
is the one gate: the store runs it before an event is queued, and the
clients run it before they spool an event offline, so an event is refused
offline exactly as the daemon would refuse it online.

Subclasses of the JSON types (``StrEnum``, ``IntEnum``, tuples) are accepted
and normalised to plain JSON values, so that what the views see inline is
exactly what a replay of the stored event sees.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from atlasd.errors import InvalidValue
from atlasd.events.ids import canonical_event_id
from atlasd.events.model import NewEvent

__all__ = [
    "CONVEX_SIZE_FLOOR",
    "MAX_DOCUMENT_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_VALUE_DEPTH",
    "check_document_size",
    "check_expected_version",
    "check_occurred_at",
    "check_stream",
    "check_type",
    "check_value",
    "convex_size",
    "validate_new_event",
]

MAX_EVENT_BYTES = 1 << 20
#: A stored document as Convex counts it (``getDocumentSize``), system fields included.
MAX_DOCUMENT_BYTES = 1 << 20
#: What Convex adds for ``_id`` (its estimate) and ``_creationTime``.
_SYSTEM_FIELDS_SIZE = 38 + 23
#: Convex's count is at most 4.5 bytes per byte of JSON (``0,`` is 9 bytes to it), so an
#: encoded event up to this length cannot exceed MAX_DOCUMENT_BYTES and is not walked.
CONVEX_SIZE_FLOOR = (MAX_DOCUMENT_BYTES - _SYSTEM_FIELDS_SIZE) * 2 // 9
MAX_VALUE_DEPTH = 15
MAX_INT = 1 << 53
MAX_ARRAY_ITEMS = 8192
MAX_OBJECT_FIELDS = 1024
MAX_FIELD_NAME = 1024
MAX_STREAM = 200

_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# Strings that passed their check, remembered (the checks are pure functions of the
# string): most events repeat a handful of types, streams and field names, and a set
# lookup costs a fraction of the regex and character-class checks. Bounded: cleared
# when full.
_KNOWN_MAX = 8192
_known_types: set[str] = set()
_known_streams: set[str] = set()
_known_keys: set[str] = set()


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _KNOWN_MAX:
        known.clear()
    known.add(value)


class _Bad(Exception):
    """Raised deep in a value; each level adds its step to ``path`` on the way out."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.path: list[str] = []


def check_stream(stream: object) -> str:
    if type(stream) is str and stream in _known_streams:
        return stream
    if type(stream) is not str:
        raise InvalidValue(f"stream must be a string, got {type(stream).__name__}")
    if not 0 < len(stream) <= MAX_STREAM:
        raise InvalidValue(f"stream must be 1..{MAX_STREAM} characters, got {len(stream)}")
    if _CONTROL.search(stream):
        raise InvalidValue("stream must not contain control characters")
    _remember(_known_streams, stream)
    return stream


def check_type(event_type: object) -> str:
    if type(event_type) is str and event_type in _known_types:
        return event_type
    if type(event_type) is not str or not _TYPE.fullmatch(event_type):
        raise InvalidValue(
            f"type must be 1..100 characters of [A-Za-z0-9_.:-], got {event_type!r:.120}"
        )
    _remember(_known_types, event_type)
    return event_type


def check_occurred_at(occurred_at: object) -> int | None:
    """``occurred_at``: absent, or ms since the epoch in 0..2**53-1."""
    if occurred_at is None:
        return None
    if type(occurred_at) is not int or not 0 <= occurred_at < MAX_INT:
        raise InvalidValue(
            f"occurred_at must be an integer in 0..2**53-1 (ms since the epoch), "
            f"got {occurred_at!r:.40}"
        )
    return occurred_at


def check_expected_version(expected: object) -> int | None:
    if expected is None:
        return None
    if type(expected) is not int or expected < 0:
        raise InvalidValue(f"expected_version must be an integer >= 0, got {expected!r:.40}")
    return expected


def check_value(value: object, root: str) -> dict[str, Any]:
    """Check ``data`` or ``meta`` (named by ``root``); returns it as plain JSON values."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{root} must be an object, got {type(value).__name__}")
    normalise = [False]
    try:
        _walk_object(value, 1, normalise)
    except _Bad as bad:
        raise InvalidValue(f"{root}{''.join(reversed(bad.path))}: {bad.message}") from None
    if normalise[0] or type(value) is not dict:
        plain: dict[str, Any] = _plain_decoder.decode(msgspec.json.encode(value))
        return plain
    return value


def _number(text: str) -> int | float:
    """A JSON float's value: an integer when it is integral and within +/-2**53."""
    value = float(text)
    return int(value) if value.is_integer() and -MAX_INT <= value <= MAX_INT else value


_plain_decoder = msgspec.json.Decoder(float_hook=_number)


def convex_size(value: Any) -> int:
    """``value``'s size as Convex counts it (``getConvexSize`` in ``convex/values``)."""
    if value is None or value is True or value is False:
        return 1
    if isinstance(value, int | float):
        return 9
    if isinstance(value, str):
        return 2 + len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list):
        return 2 + sum(convex_size(item) for item in value)
    if isinstance(value, dict):
        return 2 + sum(len(k.encode()) + 1 + convex_size(v) for k, v in value.items())
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def check_document_size(body: bytes) -> None:
    """Refuse an encoded event whose Convex document would exceed MAX_DOCUMENT_BYTES.

    Cheap for most events: only bodies over :data:`CONVEX_SIZE_FLOOR` are decoded
    and walked.
    """
    if len(body) <= CONVEX_SIZE_FLOOR:
        return
    size = convex_size(msgspec.json.decode(body)) + _SYSTEM_FIELDS_SIZE
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidValue(
            f"event is {size} bytes as Convex counts a document, more than {MAX_DOCUMENT_BYTES}"
        )


def _step_name(key: str) -> str:
    return "." + (key if len(key) <= 64 else key[:61] + "...")


def _walk_object(obj: dict[Any, Any], depth: int, normalise: list[bool]) -> None:
    if depth > MAX_VALUE_DEPTH:
        raise _Bad(f"nested deeper than {MAX_VALUE_DEPTH} levels")
    if len(obj) > MAX_OBJECT_FIELDS:
        raise _Bad(f"object has {len(obj)} fields, more than {MAX_OBJECT_FIELDS}")
    known = _known_keys
    for key, item in obj.items():
        if key not in known or type(key) is not str:
            _check_key(key, normalise)
        t = type(item)
        if t is str or t is bool or item is None:
            continue
        try:
            _walk_item(item, t, depth, normalise)
        except _Bad as bad:
            bad.path.append(_step_name(key))
            raise


def _check_key(key: Any, normalise: list[bool]) -> None:
    if type(key) is not str:
        if not isinstance(key, str):
            raise _Bad(f"field name {key!r:.40} is not a string")
        normalise[0] = True
    if not (0 < len(key) <= MAX_FIELD_NAME and key.isascii() and key.isprintable()):
        bad = _Bad("field names must be 1..1024 printable ASCII characters")
        bad.path.append(_step_name(key) if key else ".''")
        raise bad
    if key[0] == "$":
        bad = _Bad("field names must not start with '$'")
        bad.path.append(_step_name(key))
        raise bad
    if key == "__proto__":
        bad = _Bad("'__proto__' is not a storable field name")
        bad.path.append(_step_name(key))
        raise bad
    if type(key) is str:
        _remember(_known_keys, key)


def _walk_array(items: list[Any] | tuple[Any, ...], depth: int, normalise: list[bool]) -> None:
    if depth > MAX_VALUE_DEPTH:
        raise _Bad(f"nested deeper than {MAX_VALUE_DEPTH} levels")
    if len(items) > MAX_ARRAY_ITEMS:
        raise _Bad(f"array has {len(items)} items, more than {MAX_ARRAY_ITEMS}")
    for index, item in enumerate(items):
        t = type(item)
        if t is str or t is bool or item is None:
            continue
        try:
            _walk_item(item, t, depth, normalise)
        except _Bad as bad:
            bad.path.append(f"[{index}]")
            raise


def _walk_item(item: Any, t: type, depth: int, normalise: list[bool]) -> None:
    """Check one non-trivial value found at ``depth`` (its container's depth)."""
    if t is int:
        if not -MAX_INT <= item <= MAX_INT:
            raise _Bad("integer outside -2**53..2**53")
    elif t is float:
        if not math.isfinite(item):
            raise _Bad(f"{item} is not a finite number")
        if item.is_integer() and -MAX_INT <= item <= MAX_INT:
            normalise[0] = True  # stored as the integer (see the module docstring)
    elif t is dict:
        _walk_object(item, depth + 1, normalise)
    elif t is list:
        _walk_array(item, depth + 1, normalise)
    else:
        _walk_subclass(item, depth, normalise)


def _walk_subclass(item: Any, depth: int, normalise: list[bool]) -> None:
    normalise[0] = True
    if isinstance(item, bool | str):
        return
    if isinstance(item, int):
        _walk_item(int(item), int, depth, normalise)
    elif isinstance(item, float):
        _walk_item(float(item), float, depth, normalise)
    elif isinstance(item, dict):
        _walk_object(item, depth + 1, normalise)
    elif isinstance(item, list | tuple):
        _walk_array(item, depth + 1, normalise)
    else:
        raise _Bad(f"{type(item).__name__} is not a JSON value")


class _Validated(NewEvent, gc=False):
    """A :class:`NewEvent` that passed validation, kept out of the cycle collector: it
    holds only JSON values, so no cycle can run through it, and a group commit keeps
    thousands of them alive at once. Tracked, each would survive young collections and
    be promoted to the oldest generation, whose growth sets off full collections that
    walk the whole heap (measured: one in four young collections and half the full ones
    on batches of 1,000)."""

    def __eq__(self, other: object) -> bool:
        """Equal to the plain NewEvent with the same fields, as validation's result was
        before it had a type of its own (a Struct only equals its own type)."""
        if type(other) is NewEvent or type(other) is _Validated:
            return msgspec.structs.astuple(self) == msgspec.structs.astuple(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal


def validate_new_event(event: NewEvent) -> NewEvent:
    """The event as the log will take it (values normalised, ``meta`` an object, the
    id canonical), or :class:`InvalidValue` naming what is wrong."""
    return _Validated(
        stream=check_stream(event.stream),
        type=check_type(event.type),
        data=check_value(event.data, "data"),
        meta={} if event.meta is None else check_value(event.meta, "meta"),
        event_id=None if event.event_id is None else canonical_event_id(event.event_id),
        expected_version=check_expected_version(event.expected_version),
        occurred_at=check_occurred_at(event.occurred_at),
    )
