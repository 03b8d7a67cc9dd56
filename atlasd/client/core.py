"""The client's core: everything but I/O, shared by the async and blocking clients.

:class:`ClientCore` holds the settings (socket, data directory, spool on or
off, connect timeout), makes the events an append sends (stamped with an id and
a moment so a retry or a spool file never doubles them), decides when an append
falls back to the spool, and turns answers into typed results. The two clients
(:mod:`atlasd.client.async_client` and the blocking one generated from it) add
only the transport: a connection, a lock, and where the spool write runs.
Request structs and error mapping live in :mod:`atlasd.client.calls`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from atlasd.errors import AtlasdError, DaemonUnreachable, Unavailable
from atlasd.events import AppendResult, Event, NewEvent

from . import calls
from .paths import resolve_data_dir, resolve_socket_path, spool_dir_for
from .results import AppendOutcome, Pong, ReadResult, StatusReport, SyncNowResult
from .spool import spool_events

__all__ = ["SPOOL_ON", "ClientCore"]

#: The failures after which an append goes to the spool instead: no daemon
#: answers, or it is there but not taking appends (stopping, at its connection limit).
SPOOL_ON: tuple[type[AtlasdError], ...] = (DaemonUnreachable, Unavailable)


class ClientCore:
    """Settings and answer handling of a client; see the module docstring.

    ``socket_path`` and ``data_dir`` default as the daemon's do (flags, then
    ``ATLASD_SOCKET`` / ``ATLASD_DATA_DIR``, then the built-in defaults).
    ``spool=False`` turns the offline fallback off (appends then raise
    :class:`~atlasd.errors.DaemonUnreachable`).
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        spool: bool = True,
        connect_timeout: float = 5.0,
    ) -> None:
        self.socket_path: Path = resolve_socket_path(socket_path)
        self._data_dir = data_dir
        self.spool_enabled = spool
        self.connect_timeout = connect_timeout

    @property
    def spool_dir(self) -> Path:
        """Where offline appends go: ``DATA_DIR/spool``."""
        return spool_dir_for(resolve_data_dir(self._data_dir, socket_path=self.socket_path))

    # -- requests ----------------------------------------------------------------

    @staticmethod
    def _new_event(
        stream: str,
        type: str,
        data: dict[str, Any],
        *,
        event_id: str | None,
        meta: dict[str, Any] | None,
        expected_version: int | None,
        occurred_at: int | None,
    ) -> NewEvent:
        return calls.stamped(
            NewEvent(
                stream=stream,
                type=type,
                data=data,
                event_id=event_id,
                meta=meta,
                expected_version=expected_version,
                occurred_at=occurred_at,
            )
        )

    def _spool_now(
        self, events: list[NewEvent], cause: AtlasdError, *, batch: bool
    ) -> list[AppendOutcome]:
        """Write ``events`` to the spool, or re-raise ``cause`` when the spool is off
        (or the events are refused offline); blocking file I/O."""
        return spool_events(
            events, cause, self.spool_dir if self.spool_enabled else None, batch=batch
        )

    # -- answers ------------------------------------------------------------------

    # Each answer is decoded by calls.answer_as: one of another shape is ``internal``.

    @staticmethod
    def _pong(result: Any) -> Pong:
        return calls.answer_as(result, Pong, "ping")

    @staticmethod
    def _outcome(result: Any) -> AppendOutcome:
        return AppendOutcome.from_result(calls.answer_as(result, AppendResult, "append"))

    @staticmethod
    def _outcomes(result: Any) -> list[AppendOutcome]:
        return [AppendOutcome.from_result(r) for r in calls.to_results(result)]

    @staticmethod
    def _read_result(result: Any) -> ReadResult[Event]:
        return calls.answer_as(result, ReadResult[Event], "read")

    @staticmethod
    def _status_raw(result: Any) -> dict[str, Any]:
        return calls.answer_as(result, dict[str, Any], "status")

    @staticmethod
    def _status(result: Any) -> StatusReport:
        return calls.answer_as(result, StatusReport, "status")

    @staticmethod
    def _sync_result(result: Any) -> SyncNowResult:
        return calls.answer_as(result, SyncNowResult, "sync_now")
