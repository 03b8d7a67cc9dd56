"""The sync worker: replays unsent events to the remote, exactly once, in seq order.

The loop has litestream's ``monitor()`` shape. It wakes on an append (after a
short linger to fill batches), on :meth:`SyncWorker.trigger`, or on a timer;
reads the events after the durable cursor in bounded chunks; sends them in
batches sized by count and encoded bytes; and moves the cursor only after a
200, in one local transaction with the quarantine of any rejected events.
While there is a backlog it sends continuously; a *round* ends when the
backlog is drained or a batch fails.

Failure paths (each a distinct state; see docs/sync.md):

- network error, timeout, 429, 5xx, unexpected answer: ``backoff``, the next
  round after a full-jitter exponential delay (``Retry-After`` honoured);
- 401/403: ``auth_error``, retried every ``auth_retry_s`` or on trigger;
- 400/413: the batch is split in halves, recursively; an event refused alone
  is quarantined and the cursor moves past it, so it never blocks the rest;
- 5xx on the same batch :data:`SPLIT_AFTER` times in a row: later batches
  from that seq are half as large, again and again, until the event that
  fails the remote is alone; when it still fails while the remote answers
  ``status``, it is quarantined like a refused one;
- a 200 that does not account for the batch (accepted + duplicates +
  rejected != sent, a rejected id not in the batch, a high water past the
  log): ``backoff`` as a protocol error, the cursor stays.

Every 200 is progress: the backoff starts again from its first step after
each one, so only a remote that keeps failing climbs to the cap.

Quarantined events flagged by :meth:`SyncWorker.retry_rejected` are sent
again at the end of each round, after the main backlog.

Resource handling: :meth:`SyncWorker.run` owns the HTTP client and a small
task watching for appends; both are released when ``run`` is cancelled.
Cancellation mid-batch is safe: the cursor has not moved, and the retry is
answered as duplicates by the remote.

Error handling: remote failures arrive as :class:`~atlasd.sync.remote.RemoteError`
and decide the state; store errors (:class:`~atlasd.errors.AtlasdError`) and
unexpected exceptions end the round in ``backoff`` with the error logged, so a
sync problem never takes the daemon down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from atlasd.config import ConfigError, SyncConfig
from atlasd.errors import AtlasdError
from atlasd.eventlog.model import Rejection
from atlasd.eventlog.store import EventStore
from atlasd.sync.backoff import Backoff
from atlasd.sync.batching import BatchBuffer, Row, split_in_halves, take_batch
from atlasd.sync.origin_key import load_or_create_origin_key
from atlasd.sync.remote import (
    ConvexRemote,
    IngestResult,
    RemoteAuthError,
    RemoteBadBatch,
    RemoteError,
    RemoteProtocolError,
    RemoteServerError,
    build_body,
)
from atlasd.wire import SyncNowResult, SyncStateName, SyncStatus

__all__ = ["SyncWorker"]

log = logging.getLogger("atlasd.sync")

# Refresh the remote's high water (GET /status) at most this often, in seconds.
STATUS_REFRESH_S = 30.0
# Log repeated failures at most this often, in seconds (the first one always).
FAIL_LOG_INTERVAL_S = 60.0
# Quarantined event ids named in one log line, at most.
_LOG_IDS = 5
# 5xx answers to batches starting at the same seq before the next ones are halved.
SPLIT_AFTER = 3


class _IdOnly(msgspec.Struct):
    event_id: str


_id_decoder = msgspec.json.Decoder(_IdOnly)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_event_encoder = msgspec.json.Encoder()


def _event_id(raw: bytes) -> str:
    return _id_decoder.decode(raw).event_id


def _rejection(seq: int, event_id: str, code: str, message: str) -> Rejection:
    return Rejection(seq=seq, event_id=event_id, code=code, message=message)


def _with_origin(raw: bytes, origin: str) -> bytes:
    """The event sent under ``origin``; ``logged_origin`` keeps the one its hash was made with."""
    event = _dict_decoder.decode(raw)
    if event.get("origin") != origin:
        event["logged_origin"] = event.get("origin")
        event["origin"] = origin
    return _event_encoder.encode(event)


class _Forked(Exception):
    """The remote holds this origin's seqs with other events: the log was forked."""

    def __init__(self, conflicts: int) -> None:
        super().__init__(f"{conflicts} seq_conflict refusals")
        self.conflicts = conflicts


def _consume(task: asyncio.Task[None]) -> None:
    """Mark a task's exception as seen (it was logged or does not matter any more)."""
    if not task.cancelled():
        task.exception()


@dataclass
class _Round:
    """What one round did; becomes the ``sync_now`` outcome."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retried: int = 0
    error: str | None = None
    rejected_ids: list[str] | None = None

    def note_rejected(self, event_ids: Sequence[str]) -> None:
        self.rejected += len(event_ids)
        if self.rejected_ids is None:
            self.rejected_ids = []
        self.rejected_ids.extend(event_ids[: _LOG_IDS - len(self.rejected_ids)])


#: Commits one delivered batch locally: (batch rows, rejections) -> None.
_Commit = Callable[[list[Row], list[Rejection]], Awaitable[None]]


class SyncWorker:
    """Runs inside the daemon; ``run()`` until cancelled.

    ``remote`` replaces the HTTP client built from ``config`` (tests wrap it);
    ``rng`` seeds the jitter.
    """

    def __init__(
        self,
        store: EventStore,
        config: SyncConfig,
        *,
        remote: ConvexRemote | None = None,
        rng: random.Random | None = None,
        status_refresh_s: float = STATUS_REFRESH_S,
    ) -> None:
        self._store = store
        self._config = config
        self._remote = remote
        self._status_refresh_s = status_refresh_s
        # A cap below the base would make no schedule; the base wins.
        cap = max(config.backoff_base_s, config.backoff_cap_s)
        self._backoff = Backoff(config.backoff_base_s, cap, rng)
        self._state: SyncStateName = "idle" if config.enabled else "disabled"
        # Set once run() has ended; waiters queued before run() starts are served by it.
        self._stopped = False
        self._last_error: str | None = None
        self._next_attempt: float | None = None  # time.monotonic()
        self._next_attempt_ms: int | None = None  # the same instant, ms since the epoch
        self._remote_high_water: int | None = None
        self._status_at = float("-inf")  # when the high water was last learned
        self._cursor = 0
        self._commit: asyncio.Task[None] | None = None  # the backlog commit in flight
        self._wake = asyncio.Event()
        self._triggered = False
        self._retry_pending = True  # look at the retry queue in the first round
        self._waiters: list[asyncio.Future[SyncNowResult]] = []
        self._failures = 0
        self._failure_logged_at = float("-inf")
        self._suppressed = 0
        # Isolating an event that fails the remote (5xx): the first seq of the
        # failing batch, its consecutive 5xx count, the batch size in force
        # until the cursor passes ``_isolate_end``.
        self._failing_seq: int | None = None
        self._failing_count = 0
        self._batch_cap: int | None = None
        self._isolate_end = 0

    # -- the daemon's interface -------------------------------------------------

    def trigger(self) -> None:
        """Start a round now, even during a backoff or auth wait."""
        self._triggered = True
        self._wake.set()

    async def sync_now(self, wait: bool = False) -> SyncNowResult:
        """Trigger a round; with ``wait``, return its outcome once it ends."""
        if not self._config.enabled:
            return SyncNowResult(
                triggered=False,
                ok=False,
                state="disabled",
                error="sync is disabled: set CONVEX_URL or ATLASD_INGEST_URL",
            )
        if not wait:
            self.trigger()
            return SyncNowResult(triggered=True)
        if self._stopped:
            return SyncNowResult(triggered=False, ok=False, state=self._state, error="stopped")
        waiter: asyncio.Future[SyncNowResult] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.trigger()
        return await waiter

    async def retry_rejected(self) -> int:
        """Flag every quarantined event for another try; returns how many."""
        count = await self._store.sync.requeue_rejected()
        if count and self._config.enabled:
            self._retry_pending = True
            self.trigger()
        return count

    async def status(self) -> SyncStatus:
        """The ``sync`` part of the daemon's ``status`` (docs/protocol.md), without
        the quarantine (the daemon adds it)."""
        state = await self._store.sync.state()
        return SyncStatus(
            state=self._state,
            acked_seq=state.acked_seq,
            pending=state.pending,
            oldest_pending_ms=state.oldest_pending_ms,
            rejected=state.rejected,
            last_error=self._last_error,
            next_attempt_ms=self._next_attempt_ms,
            remote_high_water=self._remote_high_water,
            failures=self._failures,
            ingest_url=self._config.ingest_url,
        )

    async def run(self) -> None:
        """Sync until cancelled."""
        if not self._config.enabled:
            await asyncio.Event().wait()  # nothing to do; the daemon cancels us at shutdown
        try:
            remote = self._remote or self._make_remote()
        except ConfigError as exc:
            # Without its key this origin cannot sync; say so in status and wait.
            self._state = "auth_error"
            self._last_error = f"local: {exc}"
            log.error("sync.cannot_start error=%s", exc)
            await asyncio.Event().wait()
        self._cursor = (await self._store.sync.state()).acked_seq
        watcher = asyncio.create_task(self._watch_appends(), name="atlasd.sync.watch")
        log.info(
            "sync.started url=%s acked_seq=%d pending=%d",
            self._config.ingest_url,
            self._cursor,
            self._store.last_seq - self._cursor,
        )
        try:
            while True:
                await self._wait_for_work()
                waiters, self._waiters = self._waiters, []
                outcome = await self._round(remote)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(outcome)
        finally:
            self._stopped = True
            watcher.cancel()
            if self._commit is not None:
                # A commit still running finishes on its own (the store shields it);
                # its outcome is only of interest to the next start's cursor.
                self._commit.add_done_callback(_consume)
            for waiter in self._waiters:
                waiter.cancel()
            self._waiters.clear()
            if self._remote is None:
                await asyncio.shield(remote.aclose())

    # -- the loop ---------------------------------------------------------------------

    def _make_remote(self) -> ConvexRemote:
        assert self._config.ingest_url is not None
        token = self._config.token.reveal() if self._config.token is not None else ""
        key_file = self._config.origin_key_file
        origin_key = None if key_file is None else load_or_create_origin_key(key_file)
        return ConvexRemote(
            self._config.ingest_url, token, self._config.timeout_s, origin_key=origin_key
        )

    async def _watch_appends(self) -> None:
        seen = self._store.last_seq
        try:
            while True:
                seen = await self._store.wait_for_append(seen)
                self._wake.set()
        except AtlasdError as exc:  # the store closed under us: the daemon is stopping
            log.debug("sync.watch_ended error=%s", exc.message)

    async def _sleep_until_woken(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True when woken."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel
        # that lands as the wake-up does, and the worker would never stop.
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await self._wake.wait()
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    def _take_trigger(self) -> bool:
        triggered, self._triggered = self._triggered, False
        return triggered

    async def _wait_for_work(self) -> None:
        """Return when the next round should start."""
        while True:
            if self._take_trigger():
                return
            if self._next_attempt is not None:  # backoff or auth_error: only time or trigger
                remaining = self._next_attempt - time.monotonic()
                if remaining <= 0:
                    return
                await self._sleep_until_woken(remaining)
                continue
            if self._store.last_seq > self._cursor:
                await self._linger()
                return
            if not await self._sleep_until_woken(self._config.interval_s):
                return  # the timer: refresh the remote's status, look at retries
            if self._store.last_seq > self._cursor and not self._triggered:
                await self._linger()
                return

    async def _linger(self) -> None:
        """Give a burst of appends a moment to fill the batch (a trigger cuts it short)."""
        if self._store.last_seq - self._cursor >= self._config.batch_max_events:
            return
        if self._config.linger_ms > 0:
            deadline = time.monotonic() + self._config.linger_ms / 1000
            while not self._triggered and (remaining := deadline - time.monotonic()) > 0:
                await self._sleep_until_woken(remaining)

    async def _round(self, remote: ConvexRemote) -> SyncNowResult:
        """Drain the backlog and the retry queue; settle the state; return the outcome."""
        started = time.monotonic()
        stats = _Round()
        # The state turns "sending" with the first POST: a timer round with
        # nothing to send leaves "idle" as it is.
        self._next_attempt = None
        try:
            await self._drain_backlog(remote, stats)
            if self._retry_pending:
                await self._drain_retries(remote, stats)
            if time.monotonic() - self._status_at >= self._status_refresh_s:
                await self._refresh_remote_status(remote)
        except _Forked as forked:
            try:
                await self._continue_under_new_origin(forked.conflicts)
            except AtlasdError as exc:  # retried when the quarantine is sent again
                self._fail(f"local: {exc.message}", self._backoff.next_delay(), "backoff", stats)
            else:
                self._succeed()
        except RemoteAuthError as exc:
            self._fail(exc.describe(), self._config.auth_retry_s, "auth_error", stats)
        except RemoteError as exc:
            retry_after = getattr(exc, "retry_after", None)
            self._fail(exc.describe(), self._backoff.next_delay(retry_after), "backoff", stats)
        except AtlasdError as exc:  # the local store (e.g. unavailable while shutting down)
            self._fail(f"local: {exc.message}", self._backoff.next_delay(), "backoff", stats)
        except Exception as exc:  # a bug: log it whole, keep the daemon up
            log.exception("sync.bug during a round")
            self._fail(f"internal: {exc!r}", self._backoff.next_delay(), "backoff", stats)
        else:
            self._succeed()
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if stats.sent:
            log.info(
                "sync.round sent=%d accepted=%d duplicates=%d rejected=%d retried=%d "
                "acked_seq=%d ms=%d",
                stats.sent,
                stats.accepted,
                stats.duplicates,
                stats.rejected,
                stats.retried,
                self._cursor,
                elapsed_ms,
            )
        if stats.rejected:
            log.warning(
                "sync.quarantined count=%d event_ids=%s",
                stats.rejected,
                ",".join(stats.rejected_ids or []),
            )
        return SyncNowResult(
            triggered=True,
            ok=stats.error is None,
            state=self._state,
            sent=stats.sent,
            accepted=stats.accepted,
            duplicates=stats.duplicates,
            rejected=stats.rejected,
            retried=stats.retried,
            acked_seq=self._cursor,
            error=stats.error,
            next_attempt_ms=self._next_attempt_ms,
        )

    def _succeed(self) -> None:
        self._state = "idle"
        self._next_attempt_ms = None
        self._last_error = None
        self._backoff.reset()
        self._failures = 0
        self._suppressed = 0
        self._failure_logged_at = float("-inf")

    def _fail(self, error: str, delay: float, state: SyncStateName, stats: _Round) -> None:
        now = time.monotonic()
        self._state = state
        self._last_error = stats.error = error
        self._next_attempt = now + delay
        self._next_attempt_ms = int((time.time() + delay) * 1000)
        self._failures += 1
        if now - self._failure_logged_at >= FAIL_LOG_INTERVAL_S:
            log.warning(
                "sync.failed state=%s error=%s failures=%d suppressed=%d retry_in=%.1fs",
                state,
                error,
                self._failures,
                self._suppressed,
                delay,
            )
            self._failure_logged_at = now
            self._suppressed = 0
        else:
            self._suppressed += 1

    # -- sending -------------------------------------------------------------------------

    async def _drain_backlog(self, remote: ConvexRemote, stats: _Round) -> None:
        """Send every event after the cursor, in seq order, reading in bounded chunks.

        Three things overlap, one of each at a time: the POST of a batch, the
        local commit of the batch before it, and the read of the rows after it.
        Commits still happen strictly in seq order, each after its own 200.
        """
        limit = self._max_events()
        buffer = BatchBuffer(limit, self._byte_budget())
        buffer.reset(self._cursor)
        read: asyncio.Task[list[Row]] | None = None
        try:
            while True:
                # Back to full-size batches as soon as an isolation is over.
                buffer.max_events = limit = self._max_events()
                if buffer.needs_refill:
                    rows = await (read or self._read_ahead(buffer, limit))
                    read = None
                    buffer.extend(rows)
                batch = buffer.next_batch()
                if not batch:
                    return
                if buffer.needs_refill:  # read ahead while this batch travels
                    read = asyncio.create_task(self._read_ahead(buffer, limit))
                await self._deliver(remote, batch, stats, self._commit_backlog)
        finally:
            if read is not None:
                read.cancel()
            # The last 200's commit: the cursor is durable before the round ends.
            await self._flush_commit()

    async def _read_ahead(self, buffer: BatchBuffer, limit: int) -> list[Row]:
        """The rows after the buffer, bounded by count and by the buffer's byte room,
        so large events never pile up (read_raw returns at least one event)."""
        return await self._store.read_raw(buffer.last_seq, limit, max_bytes=buffer.room)

    async def _flush_commit(self) -> None:
        task, self._commit = self._commit, None
        if task is not None:
            await task

    def _max_events(self) -> int:
        """Events per batch: the configured size, or less while isolating a failure."""
        if self._batch_cap is None:
            return self._config.batch_max_events
        return min(self._batch_cap, self._config.batch_max_events)

    def _byte_budget(self) -> int:
        """Event bytes per batch: ``batch_max_bytes`` bounds the whole request body."""
        return max(1, self._config.batch_max_bytes - len(build_body(self._store.origin, [])))

    async def _commit_backlog(self, batch: list[Row], rejected: list[Rejection]) -> None:
        """Start the local commit of a delivered batch (the previous one finished first)."""
        await self._flush_commit()
        self._commit = asyncio.create_task(self._mark_synced(batch[-1][0], rejected))

    async def _mark_synced(self, acked: int, rejected: list[Rejection]) -> None:
        await self._store.sync.mark_synced(acked, rejected)
        self._cursor = acked

    async def _drain_retries(self, remote: ConvexRemote, stats: _Round) -> None:
        """Send the events flagged by ``retry_rejected`` (after the main backlog)."""
        seen: set[int] = set()
        while True:
            events = await self._store.sync.events_to_retry(self._config.batch_max_events)
            fresh = [event for event in events if event.seq not in seen]
            if not fresh:
                self._retry_pending = False
                return
            seen.update(event.seq for event in fresh)
            rows: deque[Row] = deque((e.seq, _event_encoder.encode(e)) for e in fresh)
            while batch := take_batch(rows, self._max_events(), self._byte_budget()):
                stats.retried += len(batch)
                await self._deliver(remote, batch, stats, self._commit_retried)

    async def _commit_retried(self, batch: list[Row], rejected: list[Rejection]) -> None:
        refused = {r.event_id for r in rejected}
        delivered = [eid for eid in map(_event_id, (raw for _, raw in batch)) if eid not in refused]
        await self._store.sync.resolve_retried(delivered, rejected)

    async def _deliver(
        self, remote: ConvexRemote, batch: list[Row], stats: _Round, commit: _Commit
    ) -> None:
        """Send one batch; on 400/413 split it, quarantining an event refused alone."""
        self._state = "sending"
        self._next_attempt_ms = None
        try:
            result = await remote.ingest(self._store.origin, self._under_origin(batch))
        except RemoteBadBatch as exc:
            if len(batch) > 1:
                for half in split_in_halves(batch):
                    await self._deliver(remote, half, stats, commit)
                return
            seq, raw = batch[0]
            event_id = _event_id(raw)
            stats.sent += 1
            stats.note_rejected([event_id])
            await commit(batch, [_rejection(seq, event_id, f"http_{exc.status}", exc.message)])
            return
        except RemoteServerError as exc:
            if not await self._isolate(remote, batch, exc):
                raise
            seq, raw = batch[0]
            event_id = _event_id(raw)
            stats.sent += 1
            stats.note_rejected([event_id])
            await commit(batch, [_rejection(seq, event_id, "remote_error", exc.message)])
            return
        rejected = self._rejections(batch, result)
        stats.sent += len(batch)
        stats.accepted += result.accepted
        stats.duplicates += result.duplicates
        stats.note_rejected([r.event_id for r in rejected])
        await commit(batch, rejected)
        self._progress(batch)
        if result.high_water is not None:
            self._remote_high_water = result.high_water
            self._status_at = time.monotonic()
        conflicts = sum(r.code == "seq_conflict" for r in rejected)
        if conflicts:
            raise _Forked(conflicts)

    def _under_origin(self, batch: list[Row]) -> list[bytes]:
        """The batch's events as the remote takes them: each under the batch's origin.

        Events written before the log changed origin (a restore, a fork) carry
        their old origin; they are sent under the current one, which the remote
        stores once by id (a duplicate when it has them) and counts towards
        the new origin's high water.
        """
        lineage = self._store.lineage
        through = lineage[-1].until_seq if lineage else 0
        if batch[0][0] > through:
            return [raw for _, raw in batch]
        origin = self._store.origin
        return [_with_origin(raw, origin) if seq <= through else raw for seq, raw in batch]

    async def _continue_under_new_origin(self, conflicts: int) -> None:
        """React to ``seq_conflict``: another log (a restored backup, a data dir
        copied by hand) sent other events under this origin's seqs. Sending
        more under it would only be refused, forever; this log continues under
        a new origin instead and is sent again from seq 1 (docs/sync.md)."""
        old = self._store.origin
        new = await self._store.reorigin(
            f"seq_conflict: the remote holds seqs of {old} with other events"
        )
        self._cursor = 0
        self._remote_high_water = None
        log.error(
            "sync.reorigined old_origin=%s new_origin=%s seq_conflicts=%d reason=the remote"
            " holds this origin's seqs with other events (a data dir restored or copied by"
            " hand); the log continues under the new origin and is sent again from seq 1",
            old,
            new,
            conflicts,
        )
        self.trigger()

    def _progress(self, batch: list[Row]) -> None:
        """An acknowledged batch: the backoff starts over; an isolation may be over."""
        self._backoff.reset()
        if self._failures:
            log.info("sync.recovered after %d failures", self._failures)
        self._failures = 0
        if self._failing_seq is not None and batch[0][0] <= self._failing_seq <= batch[-1][0]:
            self._failing_seq, self._failing_count = None, 0
        if self._batch_cap is not None and batch[-1][0] >= self._isolate_end:
            log.info("sync.isolation_over batch_max_events=%d", self._config.batch_max_events)
            self._batch_cap = None

    async def _isolate(self, remote: ConvexRemote, batch: list[Row], exc: RemoteError) -> bool:
        """Count one more 5xx for this batch; True when its lone event is to be quarantined.

        After :data:`SPLIT_AFTER` failures in a row of batches starting at the
        same seq, the next batches are half as large; an event failing alone
        that often is quarantined if the remote answers ``status`` (it is up,
        so the event is what fails it), else the remote is simply down.
        """
        first = batch[0][0]
        if first != self._failing_seq:
            self._failing_seq, self._failing_count = first, 0
        self._failing_count += 1
        if self._failing_count < SPLIT_AFTER:
            return False
        self._failing_count = 0
        if len(batch) > 1:
            self._batch_cap = max(1, len(batch) // 2)
            self._isolate_end = max(self._isolate_end, batch[-1][0])
            log.warning(
                "sync.isolating from_seq=%d batch=%d next_batch=%d error=%s",
                first,
                len(batch),
                self._batch_cap,
                exc.describe(),
            )
            return False
        try:
            await remote.remote_status(self._store.origin)
        except RemoteError:
            return False
        log.warning("sync.fails_remote seq=%d error=%s", first, exc.describe())
        self._failing_seq = None
        return True

    def _rejections(self, batch: list[Row], result: IngestResult) -> list[Rejection]:
        """The store's rejections for a 200's ``rejected`` list.

        Raises :class:`RemoteProtocolError` unless the answer accounts for every
        event sent exactly once (accepted + duplicates + rejected = sent, each
        rejected id in the batch once) and its high water is within the log:
        the cursor moves on nothing less.
        """
        problem = None
        if result.accepted + result.duplicates + len(result.rejected) != len(batch):
            problem = (
                f"the answer accounts for {result.accepted} accepted + {result.duplicates} "
                f"duplicates + {len(result.rejected)} rejected of {len(batch)} events sent"
            )
        elif result.high_water is None or not 0 <= result.high_water <= self._store.last_seq:
            problem = f"high_water {result.high_water} is not within 0..{self._store.last_seq}"
        seqs = {_event_id(raw): seq for seq, raw in batch}
        rejections = []
        for item in result.rejected:
            seq = seqs.pop(item.event_id, None)
            if seq is None and problem is None:
                problem = f"rejected event {item.event_id[:40]!r} was not sent, or named twice"
            if seq is not None:
                rejections.append(_rejection(seq, item.event_id, item.code, item.message))
        if problem is not None:
            raise RemoteProtocolError(f"ingest answer: {problem}", status=200)
        return rejections

    async def _refresh_remote_status(self, remote: ConvexRemote) -> None:
        """Learn the remote's high water for this origin; a failure here is not a round failure."""
        self._status_at = time.monotonic()
        try:
            status = await remote.remote_status(self._store.origin)
        except RemoteError as exc:
            log.debug("sync.status_unavailable error=%s", exc.describe())
            return
        self._remote_high_water = status.high_water
