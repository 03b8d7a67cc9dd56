"""The two streaming ops: ``subscribe`` (events) and ``watch`` (a query's answers).

Both turn the connection into a one-way stream and run until the client goes
away, the subscriber overflows (``slow_consumer``), or the daemon stops.

Resource handling: a subscriber's memory is bounded by ``subscriber_buffer``
events; a watcher keeps only the digest of the last answer it sent, and
runs its query again only once its previous answer was taken by the client,
so each watch holds at most one answer, whatever the client's reading pace.

Error handling: failures before the stream starts (bad parameters, unknown
view) are ordinary failure lines; after that, a failure line ends the stream.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

import anyio
import msgspec

from atlasd import wire
from atlasd.daemon.access import PeerCred
from atlasd.daemon.handlers import DaemonState, Handlers, normalize_types, read_page
from atlasd.daemon.hub import Subscriber
from atlasd.daemon.log import log_event
from atlasd.errors import AtlasdError, BadRequest, SlowConsumer

__all__ = ["run_subscription", "run_watch"]

log = logging.getLogger("atlasd.daemon")

Send = Callable[[bytes], Awaitable[None]]

#: Events per catch-up read.
CATCH_UP_PAGE = 1000
#: Events joined into one socket write while live.
SEND_CHUNK = 1000
#: How long a flagged slow consumer may still take to accept its last write.
SLOW_CONSUMER_GRACE_S = 5.0

_encoder = msgspec.json.Encoder()


async def run_subscription(
    handlers: Handlers, request: wire.Subscribe, send: Send, peer: PeerCred | None = None
) -> None:
    """Catch-up from ``from_seq``, then live; returns when the stream ends."""
    state = handlers.state
    store, hub = state.store, state.hub
    if request.from_seq != "end" and request.from_seq < 0:
        await send(wire.encode_error(request.id, BadRequest("from_seq must be >= 0 or 'end'")))
        return
    types = normalize_types(request.types)
    prefix = b'{"id":' + _encoder.encode(request.id) + b',"event":'
    await send(wire.encode_ok(request.id, {"subscribed": True}))

    def lines(raws: list[bytes]) -> bytes:
        return b"".join([prefix + raw + b"}\n" for raw in raws])

    pos = store.last_seq if request.from_seq == "end" else request.from_seq
    # No await between this check and registering: see the hub's hand-over rule.
    while pos < hub.fed_seq:
        raws, pos = await read_page(store, pos, request.stream, types, CATCH_UP_PAGE)
        if raws:
            await send(lines(raws))
    with hub.subscribe(state.config.subscriber_buffer, pos, request.stream, types) as sub:
        while True:
            raws = await sub.take(SEND_CHUNK)
            if not raws:  # overflowed
                break
            await _send_unless_overflowed(send, lines(raws), sub)
    log_event(
        log,
        logging.WARNING,
        "slow_consumer",
        buffer=state.config.subscriber_buffer,
        pid=peer.pid if peer else None,
        uid=peer.uid if peer else None,
    )
    error = SlowConsumer(
        f"subscriber fell more than {state.config.subscriber_buffer} events behind; "
        "resubscribe with from_seq"
    )
    with anyio.move_on_after(SLOW_CONSUMER_GRACE_S):
        await send(wire.encode_error(request.id, error))


async def _send_unless_overflowed(send: Send, data: bytes, sub: Subscriber) -> None:
    """Write ``data``; once the subscriber overflowed, give the write a grace, then cut off.

    A write cut off midway leaves a partial line, so the connection is then
    closed without the ``slow_consumer`` line (it could not be read anyway).
    """
    cut_off = False

    async def cutoff(scope: anyio.CancelScope) -> None:
        nonlocal cut_off
        await sub.overflow.wait()
        await anyio.sleep(SLOW_CONSUMER_GRACE_S)
        cut_off = True
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(cutoff, tg.cancel_scope)
        await send(data)
        tg.cancel_scope.cancel()
    if cut_off:
        raise anyio.BrokenResourceError("slow consumer stopped reading")


async def run_watch(
    handlers: Handlers, request: wire.Watch, send: Send, peer: PeerCred | None = None
) -> None:
    """Send the query's answer now, then each time it changes (coalesced).

    Memory: a watch runs its query only while the daemon's watch answers in
    flight stay under their budget (``state.watch_bytes``) and at most two
    queries materialise rows at once; its answer counts against the budget
    until the client has taken it, and a client that has not taken it within
    ``SLOW_CONSUMER_GRACE_S`` is cut off (``slow_consumer``), so watchers that
    never read cannot hold the budget for good.
    """
    state = handlers.state
    coalesce = state.config.watch_coalesce_ms / 1000
    with state.hub.watch(request.view) as watcher:
        last: bytes | None = None
        while True:
            async with state.watch_queries:
                # inside the semaphore: every watch queued behind it looks again
                await state.watch_bytes.room()
                try:
                    rows = await handlers.query(request)
                except AtlasdError as exc:
                    await send(wire.encode_error(request.id, exc))
                    return
                encoded = _encoder.encode(rows)
                del rows
            digest = hashlib.sha256(encoded).digest()
            if digest != last:
                if last is None:
                    line = wire.encode_ok(request.id, {"rows": msgspec.Raw(encoded)})
                else:
                    line = wire.encode_rows_line(request.id, msgspec.Raw(encoded))
                del encoded
                last = digest
                out = [line]
                del line  # the one reference left is in ``out``, dropped once written
                await _send_watch_answer(send, out, state, request, peer)
            else:
                del encoded
            await watcher.wait()
            # Let a burst of commits settle into one re-run.
            await anyio.sleep(coalesce)
            watcher.dirty = anyio.Event()


async def _send_watch_answer(
    send: Send, out: list[bytes], state: DaemonState, request: wire.Watch, peer: PeerCred | None
) -> None:
    """Write the answer in ``out`` (taken out of it, so the transport's copy is the only
    one left), held against the watch budget until the client took it."""
    size = len(out[0])
    with state.watch_bytes.hold(size), anyio.move_on_after(SLOW_CONSUMER_GRACE_S) as grace:
        await send(out.pop())
    if grace.cancelled_caught:
        log_event(
            log,
            logging.WARNING,
            "slow_consumer",
            watch=request.view,
            answer_bytes=size,
            pid=peer.pid if peer else None,
            uid=peer.uid if peer else None,
        )
        # the write was cut midway: the line is partial, so no error line can follow
        raise anyio.BrokenResourceError("slow watcher stopped reading")
