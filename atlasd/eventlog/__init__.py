"""The append-only event log and its views (docs/architecture.md, docs/views.md).

The only package that talks to SQLite. Public entry points:

- :class:`EventStore` with :class:`StoreConfig`: appends, reads, views, sync bookkeeping.
- :func:`rebuild` and :func:`verify`: offline tools behind ``atlasd rebuild`` / ``verify``.
- :class:`DataDirLock` and :func:`default_data_dir`: the data dir.
"""

from atlasd.config import default_data_dir
from atlasd.eventlog.config import StoreConfig
from atlasd.eventlog.datadir import DataDirLock
from atlasd.eventlog.model import ProjectionInfo, Rejection, StoreStats, SyncState
from atlasd.eventlog.projections import VIEWS
from atlasd.eventlog.replay import RebuildReport, rebuild
from atlasd.eventlog.store import EventStore, StreamResult
from atlasd.eventlog.verify import VerifyReport, verify
from atlasd.events import AppendResult, Event, NewEvent

__all__ = [
    "VIEWS",
    "AppendResult",
    "DataDirLock",
    "Event",
    "EventStore",
    "NewEvent",
    "ProjectionInfo",
    "RebuildReport",
    "Rejection",
    "StoreConfig",
    "StoreStats",
    "StreamResult",
    "SyncState",
    "VerifyReport",
    "default_data_dir",
    "rebuild",
    "verify",
]
