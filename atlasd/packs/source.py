"""Parsing a pack file as JSON while remembering the line of every member.

The checker reports ``FILE:LINE: reason``; the standard JSON decoders keep no
positions, so this small recursive-descent parser returns the plain value and,
for every path (a tuple of object keys and array indexes), the line where its
value starts. Objects keep their members' order; a repeated member name is an
error (it would silently drop a definition).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["PackSyntaxError", "Path", "parse_with_lines"]

Path = tuple[str | int, ...]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_MAX_DEPTH = 64


class PackSyntaxError(ValueError):
    """The text is not JSON; ``line`` is where the parser stopped."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[Path, int] = {}

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def fail(self, message: str) -> PackSyntaxError:
        return PackSyntaxError(message, self.line())

    def skip(self) -> None:
        match = _WS.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()

    def value(self, path: Path) -> Any:
        if len(path) > _MAX_DEPTH:
            raise self.fail("nested too deeply")
        self.skip()
        self.lines[path] = self.line()
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.fail("unexpected end of file")
        char = text[pos]
        if char == "{":
            return self.object(path)
        if char == "[":
            return self.array(path)
        if char == '"':
            return self.string()
        for word, literal in _LITERALS.items():
            if text.startswith(word, pos):
                self.pos += len(word)
                return literal
        match = _NUMBER.match(text, pos)
        if match is None:
            raise self.fail(f"unexpected character {char!r}")
        self.pos = match.end()
        if match.group(1) or match.group(2):
            return float(match.group())
        return int(match.group())

    def string(self) -> str:
        try:
            value, self.pos = json.decoder.scanstring(self.text, self.pos + 1)
        except json.JSONDecodeError as exc:
            raise PackSyntaxError(f"bad string: {exc.msg}", self.line(exc.pos)) from None
        return value

    def object(self, path: Path) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        self.skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return out
        while True:
            self.skip()
            if not self.text.startswith('"', self.pos):
                raise self.fail("expected a member name in double quotes")
            key = self.string()
            if key in out:
                raise self.fail(f"member {key!r} repeated")
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise self.fail("expected ':' after a member name")
            self.pos += 1
            out[key] = self.value((*path, key))
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.text.startswith("}", self.pos):
                self.pos += 1
                return out
            else:
                raise self.fail("expected ',' or '}'")

    def array(self, path: Path) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        self.skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return out
        while True:
            out.append(self.value((*path, len(out))))
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.text.startswith("]", self.pos):
                self.pos += 1
                return out
            else:
                raise self.fail("expected ',' or ']'")


def parse_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """The JSON value of ``text`` and the line of each path's value."""
    parser = _Parser(text)
    value = parser.value(())
    parser.skip()
    if parser.pos != len(text):
        raise parser.fail("extra text after the JSON value")
    return value, parser.lines
