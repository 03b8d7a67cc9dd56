"""Clients for the atlasd socket, the offline spool fallback, and the ATLAS facade.

``AsyncClient`` (anyio) and ``Client`` (blocking) speak the socket protocol;
``AsyncAtlas`` and ``Atlas`` record the ATLAS build lifecycle through them.
When no daemon answers, appends are written to the spool and appended by the
daemon when it next starts (``AppendOutcome.spooled``).
"""

from __future__ import annotations

from atlasd.events.ids import new_event_id

from .async_atlas import AsyncAtlas
from .async_client import AsyncClient, AsyncSubscription, AsyncWatch
from .atlas_rows import Build, Execution, Learning, Pattern, Task
from .calls import QueryArgs
from .results import (
    AppendOutcome,
    Pong,
    QueryPage,
    ReadResult,
    StatusReport,
    SyncNowResult,
    SyncStatus,
)
from .sync_atlas import Atlas
from .sync_client import Client, Subscription, WatchStream

__all__ = [
    "AppendOutcome",
    "AsyncAtlas",
    "AsyncClient",
    "AsyncSubscription",
    "AsyncWatch",
    "Atlas",
    "Build",
    "Client",
    "Execution",
    "Learning",
    "Pattern",
    "Pong",
    "QueryArgs",
    "QueryPage",
    "ReadResult",
    "StatusReport",
    "Subscription",
    "SyncNowResult",
    "SyncStatus",
    "Task",
    "WatchStream",
    "new_event_id",
]
