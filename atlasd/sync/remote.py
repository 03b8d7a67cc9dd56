"""The Convex ingest endpoint as seen from the sync worker (docs/sync.md).

This is the only module that imports httpx. Every httpx exception and every
HTTP status is translated here, once, into either an :class:`IngestResult`
(HTTP 200) or one :class:`RemoteError` subclass carrying a ``kind`` and a
``retryable`` flag, so the worker decides on types, never on status codes.

Error hierarchy::

    RemoteError             root; code "unavailable"
    ├── RemoteNetworkError  kind "network": refused, reset, DNS, TLS (retryable)
    ├── RemoteTimeout       kind "timeout": connect/read/write/pool timeout (retryable)
    ├── RemoteThrottled     kind "throttled": 429, with ``retry_after`` (retryable)
    ├── RemoteServerError   kind "server": 5xx, with ``retry_after`` if sent (retryable)
    ├── RemoteProtocolError kind "protocol": unexpected status or body (retryable)
    ├── RemoteAuthError     kind "auth": 401/403, needs a right token (retried slowly)
    └── RemoteBadBatch      kind "bad_batch": 400/413, split the batch (not retryable as is)

Resource handling: one ``httpx.AsyncClient`` per :class:`ConvexRemote`, so
connections are reused across batches; :meth:`ConvexRemote.aclose` (or
``async with``) releases them.

Answers are read with a size limit (:data:`MAX_ANSWER_BYTES`): a remote that
streams an endless body is a protocol error, not a daemon out of memory.

Error handling: the bearer token and the origin key live only in the client's
default headers. No message built here includes request headers, and every
message is passed through a :class:`~atlasd.redact.Redactor` of both, which
removes them in every form a remote or httpx might echo them (as is,
percent-encoded, JSON-escaped, ...) and any credentials written into a URL.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import httpx
import msgspec

from atlasd.errors import AtlasdError
from atlasd.redact import Redactor

__all__ = [
    "ConvexRemote",
    "IngestResult",
    "RejectedEvent",
    "RemoteAuthError",
    "RemoteBadBatch",
    "RemoteError",
    "RemoteNetworkError",
    "RemoteProbe",
    "RemoteProtocolError",
    "RemoteServerError",
    "RemoteStatus",
    "RemoteThrottled",
    "RemoteTimeout",
    "build_body",
    "parse_retry_after",
]

# Longest slice of a response body quoted in an error message.
_BODY_EXCERPT = 200
#: Longest answer read from the remote; a 200 body is a few hundred bytes plus
#: one line per rejected event (at most one batch of them).
MAX_ANSWER_BYTES = 1 << 20
#: The header carrying the origin key (see docs/security.md).
ORIGIN_KEY_HEADER = "X-Atlasd-Origin-Key"


class RemoteError(AtlasdError):
    """The remote did not take a request; ``kind`` says why."""

    code = "unavailable"
    kind: ClassVar[str] = "network"
    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def describe(self) -> str:
        """One line for ``status.last_error`` and logs: ``kind: message``."""
        return f"{self.kind}: {self.message}"


class RemoteNetworkError(RemoteError):
    kind = "network"


class RemoteTimeout(RemoteError):
    kind = "timeout"


class RemoteProtocolError(RemoteError):
    kind = "protocol"


class _RetryAfterError(RemoteError):
    """A refusal that may tell us how long to wait (``Retry-After``)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RemoteThrottled(_RetryAfterError):
    kind = "throttled"


class RemoteServerError(_RetryAfterError):
    kind = "server"


class RemoteAuthError(RemoteError):
    kind = "auth"
    retryable = False


class RemoteBadBatch(RemoteError):
    kind = "bad_batch"
    retryable = False


class RejectedEvent(msgspec.Struct, frozen=True):
    """One event the remote refused inside an accepted batch."""

    event_id: str
    code: str = "rejected"
    message: str = ""


class IngestResult(msgspec.Struct, frozen=True):
    """The body of a 200 answer to an ingest POST."""

    accepted: int
    duplicates: int
    rejected: list[RejectedEvent] = []
    high_water: int | None = None


class RemoteStatus(msgspec.Struct, frozen=True):
    """The body of ``GET {ingest_url}/status?origin=``."""

    origin: str
    high_water: int | None = None
    events: int | None = None


class RemoteProbe(msgspec.Struct, frozen=True):
    """A status answer with the remote's clock (its ``Date`` header), for ``doctor``."""

    status: RemoteStatus
    #: Seconds since the epoch by the remote's clock; None when it sent no usable Date.
    server_time: float | None


# httpx logs every request at INFO; the worker logs one line per round instead.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

_ingest_decoder = msgspec.json.Decoder(IngestResult)
_status_decoder = msgspec.json.Decoder(RemoteStatus)
_encoder = msgspec.json.Encoder()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Returns None when the header is absent or unreadable; never negative.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; tolerate a missing zone
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _excerpt(body: bytes) -> str:
    text = body[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
    return text.replace("\n", " ")


@dataclass(frozen=True, slots=True)
class _Answer:
    """One answer, its body read whole (within :data:`MAX_ANSWER_BYTES`)."""

    status_code: int
    content: bytes
    headers: httpx.Headers


def build_body(origin: str, events: Sequence[bytes]) -> bytes:
    """The ingest request body, spliced from already-encoded event JSON."""
    return b"".join(
        (b'{"origin":', _encoder.encode(origin), b',"events":[', b",".join(events), b"]}")
    )


class ConvexRemote:
    """Client of one ingest endpoint: ``POST ingest_url`` and ``GET ingest_url/status``.

    ``timeout`` bounds connecting, each read and each write separately, and
    the wait for a pooled connection.
    """

    def __init__(
        self,
        ingest_url: str,
        token: str,
        timeout: float,
        *,
        origin_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self._clean = Redactor([token, origin_key or ""])
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "atlasd-sync",
        }
        if origin_key:
            headers[ORIGIN_KEY_HEADER] = origin_key
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=timeout, read=timeout, write=timeout, pool=timeout),
            # One batch in flight at a time; keep that connection alive between batches.
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
            headers=headers,
            verify=True,
            http1=True,
            http2=False,
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ConvexRemote({self._clean(self.ingest_url)!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ingest(self, origin: str, events: Sequence[bytes]) -> IngestResult:
        """POST one batch; the result of a 200, or raise a :class:`RemoteError`."""
        body = build_body(origin, events)
        response = await self._request("POST", self.ingest_url, content=body)
        try:
            result = _ingest_decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise RemoteProtocolError(
                self._clean(f"unexpected ingest answer: {_excerpt(response.content)!r}"),
                status=response.status_code,
            ) from exc
        if result.accepted < 0 or result.duplicates < 0:
            raise RemoteProtocolError("negative counts in ingest answer", status=200)
        return result

    async def remote_status(self, origin: str) -> RemoteStatus:
        """``GET ingest_url/status?origin=``: what the remote holds of this origin."""
        return (await self.probe(origin)).status

    async def probe(self, origin: str) -> RemoteProbe:
        """:meth:`remote_status` with the time the remote's ``Date`` header gives."""
        response = await self._request(
            "GET", f"{self.ingest_url}/status", params={"origin": origin}
        )
        try:
            status = _status_decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise RemoteProtocolError(
                self._clean(f"unexpected status answer: {_excerpt(response.content)!r}"),
                status=response.status_code,
            ) from exc
        server_time = None
        date = response.headers.get("Date")
        if date:
            try:
                server_time = email.utils.parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError):
                server_time = None
        return RemoteProbe(status=status, server_time=server_time)

    async def _request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        """Send and read one request; translate every failure into a RemoteError."""
        try:
            async with self._client.stream(method, url, **kwargs) as response:
                body = bytearray()
                # Decoded bytes are counted, so a compressed bomb stops at the limit too.
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise RemoteProtocolError(
                            f"HTTP {response.status_code}: answer over {MAX_ANSWER_BYTES} bytes",
                            status=response.status_code,
                        )
                answer = _Answer(response.status_code, bytes(body), response.headers)
        except httpx.TimeoutException as exc:
            raise RemoteTimeout(self._clean(f"{type(exc).__name__}: {exc}")) from exc
        except httpx.TransportError as exc:
            # ConnectError, ReadError, WriteError, RemoteProtocolError (a reset
            # or an answer cut short), ProxyError, UnsupportedProtocol.
            raise RemoteNetworkError(self._clean(f"{type(exc).__name__}: {exc}")) from exc
        except httpx.HTTPError as exc:
            raise RemoteNetworkError(self._clean(f"{type(exc).__name__}: {exc}")) from exc
        status = answer.status_code
        if status == 200:
            return answer
        detail = self._clean(f"HTTP {status}: {_excerpt(answer.content)}".rstrip(": "))
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        if status in (401, 403):
            raise RemoteAuthError(detail, status=status)
        if status in (400, 413):
            raise RemoteBadBatch(detail, status=status)
        if status == 429:
            raise RemoteThrottled(detail, status=status, retry_after=retry_after)
        if status == 408:
            raise RemoteTimeout(detail, status=status)
        if status >= 500:
            raise RemoteServerError(detail, status=status, retry_after=retry_after)
        # 3xx, 404, 405 ...: a wrong URL or a proxy in the way; keep trying, loudly.
        raise RemoteProtocolError(detail, status=status)
