"""The dashboard's access checks, as one ASGI middleware in front of every route.

- ``Host`` must name the bound address and port (an IP literal, or
  ``localhost`` when the address is a loopback one): a page on another
  origin that re-points its own name at this address (DNS rebinding) is
  refused before anything else runs.
- The printed URL carries a random token. A request carrying it gets an
  HttpOnly, SameSite=Strict session cookie and is redirected to the same
  path without the token (so it leaves the address bar and the history);
  every other request must carry that cookie. Anything else: 403.
- A program (a Prometheus scrape of ``/metrics``, a script) sends the token
  as ``Authorization: Bearer TOKEN`` instead; that admits reads
  (``GET``/``HEAD``) only, never the write. A page on another origin cannot
  set that header without a CORS preflight, which is never granted.
- The one write (``POST``) also needs the page's CSRF token in the
  ``X-Atlasd-CSRF`` header and, when the browser sends one, an ``Origin``
  equal to this server's. No CORS headers are ever sent, so no other origin
  can read an answer.
- Every answer forbids caching, framing, referrers and foreign scripts.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "CSRF_HEADER",
    "MIN_TOKEN_CHARS",
    "AccessGuard",
    "TokenFileError",
    "allowed_hosts",
    "cookie_name",
    "read_token_file",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def cookie_name(port: int) -> str:
    """The session cookie's name for a dashboard on ``port``.

    Browsers keep cookies per host, not per port: two dashboards on one machine
    need a name each, or signing in to one signs the browser out of the other.
    """
    return f"atlasd_dashboard_{port}"


CSRF_HEADER = "x-atlasd-csrf"
TOKEN_PARAM = "token"

_SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        b"frame-ancestors 'none'",
    ),
]


#: A token given in a file must be at least this long (``secrets.token_urlsafe(24)`` is 32).
MIN_TOKEN_CHARS = 16
_MAX_TOKEN_FILE_BYTES = 4096


class TokenFileError(ValueError):
    """The ``--token-file`` cannot serve as the dashboard's access token."""


def read_token_file(path: Path) -> str:
    """A fixed access token (for a scraper that cannot follow a printed URL).

    Refused: anything but a regular file, a file others may read or write
    (group access is allowed, so a scraper's group can share it), an empty or
    short token, and characters that do not belong in a URL or a header.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TokenFileError(f"cannot open the token file {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TokenFileError(f"the token file {path} is not a regular file")
        if info.st_mode & 0o007:
            raise TokenFileError(
                f"the token file {path} is open to others (mode {stat.S_IMODE(info.st_mode):04o}):"
                f" chmod o-rwx {path}"
            )
        raw = os.read(fd, _MAX_TOKEN_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX_TOKEN_FILE_BYTES:
        raise TokenFileError(f"the token file {path} is over {_MAX_TOKEN_FILE_BYTES} bytes")
    token = raw.decode("ascii", "replace").strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenFileError(
            f"the token in {path} is shorter than {MIN_TOKEN_CHARS} characters"
            " (make one: python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    if not all(c.isascii() and (c.isalnum() or c in "-_.~") for c in token):
        raise TokenFileError(f"the token in {path} may hold only letters, digits and -_.~")
    return token


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` header values that name this server (lower case)."""
    names = {host.lower()}
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        names |= {"localhost", "127.0.0.1", "::1"} if address.version == 6 else {"localhost"}
    if host.lower() == "localhost":
        names |= {"127.0.0.1", "::1"}
    values = set()
    for name in names:
        shown = f"[{name}]" if ":" in name else name
        values.add(f"{shown}:{port}")
    return frozenset(values)


class AccessGuard:
    """ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        session: str,
        csrf: str,
        hosts: frozenset[str],
        cookie: str,
    ) -> None:
        self._app = app
        self._cookie_name = cookie
        self._token = token
        self._session = session
        self._csrf = csrf
        self._hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the dashboard speaks no websocket
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _headers(scope)
        if headers.get("host", "").lower() not in self._hosts:
            await _deny(send, 403, "this dashboard answers only on its own address")
            return
        bearer = headers.get("authorization")
        if bearer is not None:
            scheme, _, offered_token = bearer.partition(" ")
            if scheme.lower() != "bearer" or not _same(offered_token.strip(), self._token):
                await _deny(send, 403, "wrong access token")
                return
            if scope["method"] not in ("GET", "HEAD"):
                await _deny(send, 403, "a bearer token admits reads only")
                return
            await self._app(scope, receive, _with_security_headers(send))
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = [v for k, v in query if k == TOKEN_PARAM]
        if offered:
            if not _same(offered[0], self._token):
                await _deny(send, 403, "wrong access token")
                return
            rest = urlencode([(k, v) for k, v in query if k != TOKEN_PARAM])
            # One leading slash: "//host/..." would send the browser elsewhere.
            path = "/" + str(scope["path"]).lstrip("/")
            await _redirect_with_cookie(send, path + (f"?{rest}" if rest else ""), self)
            return
        if not _same(_cookie(headers, self._cookie_name), self._session):
            await _deny(
                send, 403, "open the dashboard with the URL it printed (it carries a token)"
            )
            return
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin is not None and origin.lower() not in {f"http://{h}" for h in self._hosts}:
                await _deny(send, 403, "cross-origin request refused")
                return
            if not _same(headers.get(CSRF_HEADER, ""), self._csrf):
                await _deny(send, 403, "missing or wrong CSRF token")
                return
        await self._app(scope, receive, _with_security_headers(send))

    def cookie_header(self) -> bytes:
        return f"{self._cookie_name}={self._session}; Path=/; HttpOnly; SameSite=Strict".encode(
            "latin-1"
        )


def _with_security_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
        await send(message)

    return send_with_headers


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode("utf-8", "replace"), expected.encode())


_SINGLE = frozenset({"host", "authorization"})


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        # A repeated Host or Authorization is ambiguous (a proxy in front may have checked
        # the other one): make it fail the check rather than pick one.
        if key in _SINGLE and key in headers:
            headers[key] = ""
            continue
        headers.setdefault(key, value.decode("latin-1"))
    return headers


def _cookie(headers: dict[str, str], name: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is just no cookie
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


async def _deny(send: Send, status: int, reason: str) -> None:
    body = f"{status} Forbidden: {reason}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *_SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(send: Send, location: str, guard: AccessGuard) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace") or b"/"),
                (b"set-cookie", guard.cookie_header()),
                (b"content-length", b"0"),
                *_SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
