"""Live fan-out: one reader follows the log and feeds every subscriber and watcher.

After each commit the hub reads the new events once (already-encoded JSON,
``store.read_raw``) and offers them to each subscriber's bounded queue and
pokes the watchers whose view they may change. Nobody waits on a slow
subscriber: one whose queue would overflow is flagged and dropped.

Hand-over without gap or duplicate: a subscriber reads its catch-up from the
store until its cursor reaches :attr:`Hub.fed_seq`, then registers in the
same event-loop step (no await between the check and the registration). The
hub only ever offers events after ``fed_seq``, and each subscriber drops
events at or before its own cursor.

Resource handling: :meth:`Hub.run` runs until cancelled; subscribers and
watchers unregister themselves (``with hub.subscribe(...)``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import msgspec

from atlasd.daemon.log import log_event
from atlasd.eventlog.store import EventStore
from atlasd.packs.registry import builtin_packs

__all__ = ["VIEW_TYPES", "Hub", "Subscriber", "Watcher"]

log = logging.getLogger("atlasd.daemon")

#: Events read from the store per fan-out round.
PAGE = 1000

#: Event types that can change each built-in view; other views: any.
VIEW_TYPES: dict[str, frozenset[str]] = builtin_packs().view_types()


class _Head(msgspec.Struct):
    stream: str
    type: str


_head_decoder = msgspec.json.Decoder(_Head)

#: (seq, encoded event, stream, type); stream/type are None when nobody filters.
Item = tuple[int, bytes, str | None, str | None]


class Subscriber:
    """A bounded queue of encoded events for one ``subscribe`` connection."""

    def __init__(
        self,
        capacity: int,
        after_seq: int,
        stream: str | None,
        types: frozenset[str] | None,
    ) -> None:
        self.capacity = capacity
        self.after_seq = after_seq
        self.stream = stream
        self.types = types
        self.overflowed = False
        #: Set once, when the subscriber overflowed.
        self.overflow = anyio.Event()
        self._items: deque[bytes] = deque()
        self._wake = anyio.Event()

    @property
    def filtered(self) -> bool:
        return self.stream is not None or self.types is not None

    def offer(self, page: list[Item]) -> None:
        if self.overflowed or not page:
            return
        after = self.after_seq
        if not self.filtered:
            if page[0][0] > after:
                self._items.extend(item[1] for item in page)
            else:
                self._items.extend(item[1] for item in page if item[0] > after)
        else:
            stream, types = self.stream, self.types
            self._items.extend(
                raw
                for seq, raw, ev_stream, ev_type in page
                if seq > after
                and (stream is None or ev_stream == stream)
                and (types is None or ev_type in types)
            )
        self.after_seq = max(after, page[-1][0])
        if len(self._items) > self.capacity:
            # Drop the backlog now: the connection is told and closed.
            self.overflowed = True
            self.overflow.set()
            self._items.clear()
        if self._items or self.overflowed:
            self._wake.set()

    async def take(self, max_items: int) -> list[bytes]:
        """Wait for events; returns [] once overflowed."""
        while not self._items and not self.overflowed:
            await self._wake.wait()
            self._wake = anyio.Event()
        if self.overflowed:
            return []
        count = min(max_items, len(self._items))
        return [self._items.popleft() for _ in range(count)]


class Watcher:
    """A flag raised when a commit may change a watched view."""

    def __init__(self, types: frozenset[str] | None) -> None:
        self.types = types
        self.dirty = anyio.Event()

    def poke(self, types: set[str] | None) -> None:
        if self.types is None or types is None or not self.types.isdisjoint(types):
            self.dirty.set()

    async def wait(self) -> None:
        await self.dirty.wait()
        self.dirty = anyio.Event()


class Hub:
    """Follows the store after ``fed_seq`` and offers new events to listeners."""

    def __init__(
        self, store: EventStore, view_types: dict[str, frozenset[str]] | None = None
    ) -> None:
        self._store = store
        #: the event types that can change each view (the loaded packs'); others: any
        self.view_types = VIEW_TYPES if view_types is None else view_types
        #: Everything up to here has been offered to the registered listeners.
        self.fed_seq = store.last_seq
        self.subscribers: set[Subscriber] = set()
        self.watchers: set[Watcher] = set()

    @contextmanager
    def subscribe(
        self,
        capacity: int,
        after_seq: int,
        stream: str | None = None,
        types: frozenset[str] | None = None,
    ) -> Iterator[Subscriber]:
        """Register a subscriber; the caller's cursor must be >= ``fed_seq``."""
        assert after_seq >= self.fed_seq, "catch-up must reach fed_seq first"
        sub = Subscriber(capacity, after_seq, stream, types)
        self.subscribers.add(sub)
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)

    @contextmanager
    def watch(self, view: str) -> Iterator[Watcher]:
        watcher = Watcher(self.view_types.get(view))
        self.watchers.add(watcher)
        try:
            yield watcher
        finally:
            self.watchers.discard(watcher)

    async def run(self) -> None:
        """Fan out every commit until cancelled."""
        while True:
            await self._store.wait_for_append(self.fed_seq)
            if not self.subscribers and not self.watchers:
                # Nobody listens: skip reading; later subscribers catch up from the store.
                self.fed_seq = max(self.fed_seq, self._store.last_seq)
                continue
            rows = await self._store.read_raw(self.fed_seq, PAGE)
            if not rows:
                log_event(log, logging.WARNING, "hub_empty_read", fed_seq=self.fed_seq)
                await anyio.sleep(0.05)
                continue
            self._fan_out(rows)

    def _fan_out(self, rows: list[tuple[int, bytes]]) -> None:
        need_heads = bool(self.watchers) or any(s.filtered for s in self.subscribers)
        page: list[Item]
        if need_heads:
            page = []
            for seq, raw in rows:
                head = _head_decoder.decode(raw)
                page.append((seq, raw, head.stream, head.type))
        else:
            page = [(seq, raw, None, None) for seq, raw in rows]
        self.fed_seq = rows[-1][0]
        for sub in list(self.subscribers):
            sub.offer(page)
        if self.watchers:
            types = {item[3] for item in page if item[3] is not None}
            for watcher in list(self.watchers):
                watcher.poke(types)
