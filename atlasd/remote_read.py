"""Reading a Convex deployment's views and events back, for people.

A small client of the deployment's public read queries (``read:view``,
``read:events``, ``read:origins``) over Convex's HTTP query API: ``POST
{CONVEX_URL}/api/query`` with ``{"path", "args", "format": "json"}``. Every
call carries the read token (``ATLASD_READ_TOKEN``), never the ingest token,
or a signed-in user's JWT.
It backs ``atlasd remote query``: handy for checking what a teammate's
machine has synced.

Error hierarchy::

    RemoteReadError        root; code "unavailable": no answer, or not one of Convex's
    └── RemoteReadRefused  the query threw: ``remote_code`` is the ConvexError's code
                           ("unauthorized", "bad_request", ...) when it has one

Resource handling: one ``httpx.Client`` per :class:`ConvexReader`; close it
with :meth:`ConvexReader.close` or ``with``.

Error handling: the read token travels only in request bodies, a JWT only
in the ``Authorization`` header; every message built here is passed through
a redaction of both in case a server echoes them.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Literal, Self

import httpx
import msgspec

from atlasd.errors import AtlasdError
from atlasd.redact import Redactor

__all__ = [
    "ConvexReader",
    "Page",
    "RemoteOrigin",
    "RemoteReadError",
    "RemoteReadRefused",
    "from_convex_json",
]

# Rows per page unless the caller asks otherwise; the deployment allows 1..1000.
DEFAULT_PAGE_SIZE = 500
# Longest slice of an unexpected body quoted in an error message.
_BODY_EXCERPT = 200

Order = Literal["asc", "desc"]


class RemoteReadError(AtlasdError):
    """The deployment gave no usable answer (network, HTTP status, body)."""

    code = "unavailable"
    retryable = True


class RemoteReadRefused(RemoteReadError):
    """The query ran and threw; ``remote_code`` names why when the deployment said."""

    retryable = False

    def __init__(self, message: str, remote_code: str | None = None) -> None:
        super().__init__(message)
        self.remote_code = remote_code


class Page(msgspec.Struct, frozen=True):
    """One page of a paginated read: rows, whether it is the last, where to go on.

    ``rebuilding`` (views only): the deployment is rebuilding the view after a
    definition change, so rows may be missing until it finishes.
    """

    rows: list[dict[str, Any]]
    is_done: bool
    cursor: str | None
    rebuilding: bool = False


class RemoteOrigin(msgspec.Struct, frozen=True):
    """One sending daemon as the deployment knows it."""

    origin: str
    high_water: int
    events: int
    last_ingest_at: int | None = None


class _Answer(msgspec.Struct, rename="camel"):
    """Convex's answer: ``{"status", "value"}`` or ``{"status", "errorMessage", "errorData"}``."""

    status: str
    value: Any = None
    error_message: str | None = None
    error_data: Any = None


_answer_decoder = msgspec.json.Decoder(_Answer)


def from_convex_json(value: Any) -> Any:
    """Convex's JSON wire values as Python values (``$integer``, ``$float``, ``$bytes``)."""
    if isinstance(value, list):
        return [from_convex_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((name, inner),) = value.items()
            if name == "$integer" and isinstance(inner, str):
                return struct.unpack("<q", base64.b64decode(inner))[0]
            if name == "$float" and isinstance(inner, str):
                return struct.unpack("<d", base64.b64decode(inner))[0]
            if name == "$bytes" and isinstance(inner, str):
                return base64.b64decode(inner)
        return {name: from_convex_json(item) for name, item in value.items()}
    return value


def _page(value: Any) -> Page:
    if not isinstance(value, dict) or not isinstance(value.get("page"), list):
        raise RemoteReadError(f"not a page of results: {str(value)[:_BODY_EXCERPT]!r}")
    done = bool(value.get("isDone"))
    cursor = value.get("continueCursor")
    return Page(
        rows=[dict(row) for row in value["page"]],
        is_done=done,
        cursor=None if done or not isinstance(cursor, str) else cursor,
        rebuilding=value.get("rebuilding") is True,
    )


class ConvexReader:
    """Client of one deployment's read API; ``url`` is ``CONVEX_URL`` (``https://NAME.convex.cloud``).

    ``token`` is the read token, passed with every call; ``identity_token``
    instead (or as well) signs the calls in as a Convex auth user (a JWT of
    the deployment's auth provider, sent as ``Authorization: Bearer``).
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 30.0,
        *,
        identity_token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token or ""
        self._clean = Redactor(secret for secret in (token, identity_token) if secret)
        headers = {"Content-Type": "application/json", "User-Agent": "atlasd-remote-read"}
        if identity_token:
            headers["Authorization"] = f"Bearer {identity_token}"
        self._client = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers=headers,
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ConvexReader({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- the read API ----------------------------------------------------

    def view_page(
        self,
        view: str,
        *,
        cursor: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        order: Order | None = None,
        filter: Mapping[str, Any] | None = None,
        origin: str | None = None,
    ) -> Page:
        """One page of ``view``, from ``cursor`` (None: the first page)."""
        args: dict[str, Any] = {"view": view, "paginationOpts": _opts(cursor, page_size)}
        if order is not None:
            args["order"] = order
        if filter:
            args["filter"] = dict(filter)
        if origin is not None:
            args["origin"] = origin
        return _page(self.query("read:view", args))

    def view_rows(
        self,
        view: str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        order: Order | None = None,
        filter: Mapping[str, Any] | None = None,
        origin: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``view``, page after page, in the view's order."""
        cursor: str | None = None
        while True:
            page = self.view_page(
                view, cursor=cursor, page_size=page_size, order=order, filter=filter, origin=origin
            )
            yield from page.rows
            if page.cursor is None:
                return
            cursor = page.cursor

    def events_page(
        self,
        *,
        cursor: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        origin: str | None = None,
        stream: str | None = None,
        type: str | None = None,
    ) -> Page:
        """One page of stored events in (origin, seq) order."""
        args: dict[str, Any] = {"paginationOpts": _opts(cursor, page_size)}
        for name, value in (("origin", origin), ("stream", stream), ("type", type)):
            if value is not None:
                args[name] = value
        return _page(self.query("read:events", args))

    def origins(self) -> list[RemoteOrigin]:
        """Every origin that sent a batch, with its high water and counts."""
        value = self.query("read:origins", {})
        try:
            return msgspec.convert(value, list[RemoteOrigin])
        except msgspec.ValidationError as exc:
            raise RemoteReadError(f"unexpected origins answer: {exc}") from exc

    # -- the wire --------------------------------------------------------

    def query(self, path: str, args: Mapping[str, Any]) -> Any:
        """Run the public query ``path`` with ``args`` plus the read token; its value."""
        call_args = {**args, "token": self._token} if self._token else dict(args)
        body = {"path": path, "args": call_args, "format": "json"}
        try:
            response = self._client.post("/api/query", content=msgspec.json.encode(body))
        except httpx.HTTPError as exc:
            raise RemoteReadError(self._clean(f"{type(exc).__name__}: {exc}")) from exc
        # The backend answers a function's own error with 200, the cloud with 560.
        if response.status_code not in (200, 560):
            excerpt = response.content[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
            raise RemoteReadError(self._clean(f"HTTP {response.status_code}: {excerpt}"))
        try:
            answer = _answer_decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise RemoteReadError(self._clean(f"not a Convex answer: {exc}")) from exc
        if answer.status == "success":
            return from_convex_json(answer.value)
        data = from_convex_json(answer.error_data)
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            code: str = data["code"]
            message = str(data.get("message") or answer.error_message or code)
            raise RemoteReadRefused(self._clean(f"{code}: {message}"), remote_code=code)
        raise RemoteReadRefused(self._clean(answer.error_message or f"{path} failed"))


def _opts(cursor: str | None, page_size: int) -> dict[str, Any]:
    return {"numItems": page_size, "cursor": cursor}
