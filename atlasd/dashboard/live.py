"""Live notices for one open page: the daemon's ``watch`` on each query the page shows.

A page opens ``GET /api/live?watch=[...]`` (server-sent events) naming the
queries it shows (view, filter, limit, order). For each, the dashboard holds
a daemon ``watch``; the daemon re-runs that bounded query after the commits
that may change it (coalesced) and answers only when the rows changed. The
page is then told ``{"changed": [view, ...]}`` and fetches again what it
shows. It is told ``{"ready": true}`` once every watch has answered, so that
nothing appended after that can be missed.

Cost: nothing for appends that change no watched query; otherwise about two
runs of each watched (bounded) query per :data:`NOTICE_INTERVAL_S` on the
daemon, however fast the appends come, and at most one notice per interval
to the page.

Resource handling: the watches live exactly as long as the page's stream;
the browser closing it cancels them (their connections are closed).

Error handling: a watch whose connection drops is opened again after
:data:`REWATCH_DELAY_S` (a change meanwhile shows in its first answer); one
the daemon refuses (an unknown view or column) ends, and the page is told its
``error``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal
from urllib.parse import parse_qs

import anyio
import msgspec

from atlasd.client import AsyncClient
from atlasd.errors import AtlasdError, BadRequest, InvalidValue

__all__ = ["LiveStream", "WatchSpec", "parse_specs"]

log = logging.getLogger("atlasd.dashboard")

#: Least seconds between two notices to one page (a burst of appends is one notice).
NOTICE_INTERVAL_S = 0.3
#: Seconds between keep-alive comments on a quiet stream.
KEEPALIVE_S = 15.0
#: Seconds before a dropped watch is opened again.
REWATCH_DELAY_S = 0.5
#: The most queries one page may watch, and the largest page a watch re-runs.
MAX_WATCHES = 4
MAX_WATCH_LIMIT = 1000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class WatchSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One bounded query a page shows."""

    view: str
    filter: dict[str, Any] | None = None
    limit: int = 50
    order: Literal["asc", "desc"] = "desc"


_specs_decoder = msgspec.json.Decoder(list[WatchSpec])
_encoder = msgspec.json.Encoder()


def parse_specs(raw: str) -> list[WatchSpec]:
    """The ``watch`` parameter: a JSON list of specs; :class:`BadRequest` when malformed."""
    try:
        specs = _specs_decoder.decode(raw.encode())
    except msgspec.MsgspecError as exc:
        raise BadRequest(f"watch: {exc}") from exc
    if len(specs) > MAX_WATCHES:
        raise BadRequest(f"watch: at most {MAX_WATCHES} queries")
    return [msgspec.structs.replace(s, limit=max(1, min(s.limit, MAX_WATCH_LIMIT))) for s in specs]


class _Notices:
    """What the watches found since the last notice."""

    def __init__(self, watches: int) -> None:
        self.changed: set[str] = set()
        self.errors: list[str] = []
        self.waiting_first = watches
        self.ready_sent = False
        self.wake = anyio.Event()

    def poke(self) -> None:
        self.wake.set()

    def take(self) -> dict[str, Any] | None:
        self.wake = anyio.Event()
        notice: dict[str, Any] = {}
        if self.waiting_first == 0 and not self.ready_sent:
            self.ready_sent = True
            notice["ready"] = True
        if self.changed:
            notice["changed"] = sorted(self.changed)
            self.changed.clear()
        if self.errors:
            notice["errors"] = list(self.errors)
            self.errors.clear()
        return notice or None


class LiveStream:
    """The ``/api/live`` endpoint (a plain ASGI app: the stream owns its watches)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            specs = parse_specs(params.get("watch", ["[]"])[0])
        except BadRequest as exc:
            body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        notices = _Notices(len(specs))
        async with anyio.create_task_group() as tg:

            async def until_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(until_disconnect)
            for spec in specs:
                tg.start_soon(self._follow, spec, notices)
            with contextlib.suppress(OSError):  # the browser went away mid-write
                await self._send_notices(send, notices)
            tg.cancel_scope.cancel()

    async def _send_notices(self, send: Send, notices: _Notices) -> None:
        async def chunk(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await chunk(b"retry: 1000\n\n")
        while True:
            with anyio.move_on_after(KEEPALIVE_S) as waited:
                await notices.wake.wait()
            notice = notices.take()
            if notice is not None:
                await chunk(b"data: " + _encoder.encode(notice) + b"\n\n")
                await anyio.sleep(NOTICE_INTERVAL_S)
            elif waited.cancelled_caught:
                await chunk(b": keep-alive\n\n")

    async def _follow(self, spec: WatchSpec, notices: _Notices) -> None:
        # One watch at a time, closed at the first change and opened again after a
        # pause: while appends go on, the daemon re-runs this query about twice per
        # NOTICE_INTERVAL_S instead of once per coalescing window. The re-opened
        # watch's first answer is compared with the rows last seen, so a change made
        # while no watch was open is still noticed.
        last: bytes | None = None
        while True:
            try:
                async with self._client.watch(
                    spec.view, filter=spec.filter, limit=spec.limit, order=spec.order
                ) as answers:
                    async for rows in answers:
                        encoded = _encoder.encode(rows)
                        if last is None:
                            last = encoded
                            notices.waiting_first -= 1
                            notices.poke()
                        elif encoded != last:
                            last = encoded
                            notices.changed.add(spec.view)
                            notices.poke()
                            break
            except (BadRequest, InvalidValue) as exc:
                notices.errors.append(f"{spec.view}: {exc.message}")
                if last is None:
                    notices.waiting_first -= 1
                notices.poke()
                return
            except AtlasdError as exc:
                log.warning("dashboard.watch_lost view=%s error=%s", spec.view, exc.message)
                await anyio.sleep(REWATCH_DELAY_S)
                continue
            await anyio.sleep(NOTICE_INTERVAL_S)
