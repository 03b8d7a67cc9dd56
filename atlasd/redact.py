"""Keep secrets (the ingest token, the origin key) out of everything atlasd prints or answers.

The token is held in a :class:`~atlasd.config.Secret` (repr ``'***'``), but
its value can still come back inside text: an exception message, a remote's
error body echoing the ``Authorization`` header, a URL someone pasted it
into, an environment dump. A :class:`Redactor` replaces it in any case and in
the forms it travels in (as is, URL-quoted, JSON-escaped, in a ``repr``,
base64, hex), and any credentials written into a URL
(``https://user:pass@host``). The daemon's log formatter, ``status``, its
error answers and the sync's remote errors all pass their text through one.
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
#: The userinfo of any URL: ``scheme://user[:password]@``, up to the authority's last
#: ``@`` (a password may hold one, as URL parsers read it). It never runs past a quote
#: or backslash, so redacting a JSON text stays within one string and keeps it JSON.
_URL_CREDENTIALS = re.compile(r'(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s"\\<>]*@')


def _forms(secret: str) -> set[str]:
    """Every form ``secret`` may be echoed in."""
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
    }


class Redactor:
    """Replaces URL credentials and every known form of the given secrets with :data:`MASK`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= _MIN_LENGTH:
                forms |= _forms(secret)
        ordered = sorted(forms, key=len, reverse=True)  # the longest form wins an overlap
        self._pattern = (
            re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE) if ordered else None
        )

    def __call__(self, text: str) -> str:
        text = _URL_CREDENTIALS.sub(rf"\1{MASK}@", text)
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


_installed = Redactor(())


def install(redactor: Redactor) -> None:
    """Make ``redactor`` the one :func:`redact` applies (the daemon, at start-up)."""
    global _installed
    _installed = redactor


def redact(text: str) -> str:
    """``text`` without the installed secrets or URL credentials."""
    return _installed(text)
