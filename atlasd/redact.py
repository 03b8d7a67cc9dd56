"""Keep the ingest token out of everything the daemon prints or answers.

The token is held in a :class:`~atlasd.config.Secret` (repr ``'***'``), but
its value can still come back inside text: an exception message, a remote's
error body, a URL someone pasted it into. A :class:`Redactor` replaces it in
any case and in the forms it travels in (as is, URL-quoted, JSON-escaped,
base64, hex), and the daemon's log formatter, ``status`` and error answers
pass their text through the installed one.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Redactor", "install", "redact"]

MASK = "***"
#: Shorter values are not searched for (they would mask ordinary text).
_MIN_LENGTH = 6


class Redactor:
    """Replaces every known form of the given secrets with :data:`MASK`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < _MIN_LENGTH:
                continue
            raw = secret.encode()
            forms.update(
                {
                    secret,
                    quote(secret, safe=""),
                    quote_plus(secret),
                    json.dumps(secret)[1:-1],
                    repr(secret)[1:-1],
                    base64.b64encode(raw).decode().rstrip("="),
                    base64.urlsafe_b64encode(raw).decode().rstrip("="),
                    raw.hex(),
                }
            )
        ordered = sorted(forms, key=len, reverse=True)  # the longest form wins an overlap
        self._pattern = (
            re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE) if ordered else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


_installed = Redactor(())


def install(redactor: Redactor) -> None:
    """Make ``redactor`` the one :func:`redact` applies (the daemon, at start-up)."""
    global _installed
    _installed = redactor


def redact(text: str) -> str:
    """``text`` without the installed secrets."""
    return _installed(text)
