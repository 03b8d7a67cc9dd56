"""The parts of other components the daemon relies on, as Protocols.

The daemon is written against these (``atlasd.eventlog.EventStore`` and
``atlasd.sync.worker.SyncWorker`` satisfy them), which keeps the server
testable and its dependencies explicit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from atlasd.eventlog.counters import AppendCounters
from atlasd.eventlog.lineage import LineageEntry
from atlasd.eventlog.model import Rejection, StoreStats, SyncState
from atlasd.eventlog.projections import QueryPage, QueryParams
from atlasd.eventlog.store import StreamResult
from atlasd.events import AppendResult, Event, NewEvent
from atlasd.packs.registry import PackSet

__all__ = ["Store", "SyncControl"]


class Store(Protocol):
    @property
    def origin(self) -> str: ...

    @property
    def packs(self) -> PackSet: ...

    @property
    def last_seq(self) -> int: ...

    @property
    def lineage(self) -> list[LineageEntry]: ...

    @property
    def counters(self) -> AppendCounters: ...

    async def append(self, event: NewEvent) -> AppendResult: ...

    def submit_append(self, event: NewEvent) -> asyncio.Future[list[AppendResult]]: ...

    async def append_batch(self, events: list[NewEvent]) -> list[AppendResult]: ...

    async def append_stream(self, chunks: Iterable[Sequence[NewEvent]]) -> StreamResult: ...

    async def read(
        self,
        from_seq: int = 0,
        stream: str | None = None,
        types: list[str] | None = None,
        limit: int = 1000,
    ) -> list[Event]: ...

    async def read_raw(
        self, from_seq: int, limit: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]: ...

    async def wait_for_append(self, after_seq: int, timeout: float | None = None) -> int: ...

    async def query(
        self,
        view: str,
        filter: dict[str, Any] | None = None,
        limit: int = 1000,
        order: str = "asc",
    ) -> list[dict[str, Any]]: ...

    async def query_page(self, params: QueryParams) -> QueryPage: ...

    async def stats(self) -> StoreStats: ...

    async def sync_state(self) -> SyncState: ...

    async def rejected_events(self, limit: int | None = None) -> list[Rejection]: ...

    async def close(self) -> None: ...


class SyncControl(Protocol):
    """What ``status`` and ``sync_now`` need from the sync worker."""

    def trigger(self) -> None: ...

    async def sync_now(self, wait: bool) -> dict[str, Any]: ...

    async def status(self) -> dict[str, Any]: ...

    async def retry_rejected(self) -> int: ...
