"""The sync's bookkeeping in the store: the cursor, the quarantine and its retries.

The sync worker is the only writer of these tables; the daemon's ``status``
reads them. Writes go through the store's writer thread (one transaction
each, serialised with appends); reads use the store's read connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from atlasd.eventlog.model import Rejection, SyncState
from atlasd.eventlog.rows import body_of
from atlasd.eventlog.sql import Statements
from atlasd.eventlog.writer import Writer
from atlasd.events import Event

__all__ = ["SyncLedger"]

_decode_event = msgspec.json.Decoder(Event).decode

#: Runs a read statement on one of the store's read connections.
Fetch = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]
#: Runs a writer method on the writer thread, between groups of appends.
OnWriter = Callable[..., Awaitable[Any]]


class SyncLedger:
    """What the remote holds of this log (``acked_seq``) and what it refused for good.

    Reached as ``EventStore.sync``. Error handling: every error raised is an
    :class:`~atlasd.errors.AtlasdError` (``unavailable`` once the store closed).
    """

    def __init__(
        self, writer: Writer, fetch: Fetch, on_writer: OnWriter, last_seq: Callable[[], int]
    ) -> None:
        self._writer = writer
        self._fetch = fetch
        self._on_writer = on_writer
        self._last_seq = last_seq

    async def state(self) -> SyncState:
        """The cursor, what is pending after it and since when, the quarantine's size."""
        last_seq = self._last_seq()
        acked = int((await self._fetch(Statements.acked_seq, ()))[0][0])
        rejected = int((await self._fetch(Statements.quarantine_count, ()))[0][0])
        oldest = None
        if last_seq > acked:
            rows = await self._fetch(Statements.recorded_at_of, (acked + 1,))
            oldest = int(rows[0][0]) if rows else None
            if oldest is None and acked < self._writer.archives.last_seq:
                # after a re-origin the first unsent event may be archived
                body = await asyncio.to_thread(self._writer.archives.body_of, acked + 1)
                oldest = _decode_event(body).recorded_at if body is not None else None
        return SyncState(
            acked_seq=acked,
            pending=max(0, last_seq - acked),
            oldest_pending_ms=oldest,
            rejected=rejected,
        )

    async def mark_synced(self, acked_seq: int, rejected: Sequence[Rejection] = ()) -> None:
        """Advance the cursor (never backwards) and quarantine ``rejected``, in one transaction."""
        await self._on_writer(self._writer.mark_synced, acked_seq, list(rejected))

    async def rejected_events(self, limit: int | None = None) -> list[Rejection]:
        """The quarantine, oldest first; the first ``limit`` entries when given."""
        if limit is None:
            rows = await self._fetch(Statements.quarantine_all, ())
        else:
            rows = await self._fetch(Statements.quarantine_first, (limit,))
        return [Rejection(seq=s, event_id=e, code=c, message=m) for s, e, c, m in rows]

    async def requeue_rejected(self) -> int:
        """Flag every quarantined event for another try; returns how many."""
        count: int = await self._on_writer(self._writer.requeue_rejected)
        return count

    async def events_to_retry(self, limit: int) -> list[Event]:
        """Flagged quarantined events, in seq order, at most ``limit``: live ones, and
        archived ones from their segments."""
        rows = await self._fetch(Statements.quarantine_to_retry, (limit,))
        events = {int(row[0]): _decode_event(body_of(*row)) for row in rows}
        # taken after the live rows: one that moved meanwhile is found here (once, by seq)
        archives = self._writer.archives
        if archives.records:
            seqs = await self._fetch(
                Statements.quarantine_to_retry_archived, (archives.last_seq, limit)
            )
            for (seq,) in seqs:
                body = await asyncio.to_thread(archives.body_of, int(seq))
                if body is not None:
                    events.setdefault(int(seq), _decode_event(body))
        return [events[seq] for seq in sorted(events)[:limit]]

    async def resolve_retried(
        self, delivered_event_ids: Sequence[str], still_rejected: Sequence[Rejection] = ()
    ) -> None:
        """Drop delivered events from quarantine; keep the others with their new reason."""
        await self._on_writer(
            self._writer.resolve_retried, list(delivered_event_ids), list(still_rejected)
        )
