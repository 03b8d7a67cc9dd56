"""The store's configuration: a frozen struct with documented defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

__all__ = ["StoreConfig"]


class StoreConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How an :class:`~atlasd.eventlog.EventStore` opens its data dir.

    ``synchronous``: ``"FULL"`` syncs the WAL on every commit, so an
    acknowledged append survives a power cut; ``"NORMAL"`` survives a crash of
    the process but may lose the last commits on power loss.

    ``max_db_bytes``: refuse appends with ``unavailable`` once the database
    reaches this size (SQLite ``max_page_count``); None for no cap.
    """

    data_dir: Path
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    max_db_bytes: int | None = None
    #: Most requests one group commit takes from the queue.
    group_max_requests: int = 1024
    #: Most events one group commit takes (a batch larger than this still goes alone).
    group_max_events: int = 10_000
    #: When fewer requests wait than the last group held, wait at most this long
    #: for the rest of its appenders to come back before committing (0: never wait).
    #: Many clients that each wait for their answer then share one fsync again
    #: instead of splitting into ever smaller groups; a lone appender never waits.
    group_linger_ms: float = 1.0
    #: Passive WAL checkpoints from a thread beside the writer at most this often while
    #: large groups commit, so that SQLite's own checkpoint, which runs inside a commit
    #: and delays that group's answers, finds little left to copy (0: none; see
    #: atlasd/eventlog/checkpointer.py).
    checkpoint_interval_ms: float = 10.0
    #: Read connections (aiosqlite); each runs on its own thread.
    read_connections: int = 2
    #: SQLite page cache per connection, in KiB.
    cache_kib: int = 16_384
    #: The operator's pack files (``*.json``), loaded after the built-in packs; None: none.
    packs_dir: Path | None = None
