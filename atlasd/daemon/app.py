"""The daemon's composition: one task group owns every long-running part.

Start-up, in order: take the data dir lock, open the store, create (or take
over) the socket, then start the hub, the sync worker, the spool watcher,
the compaction schedule (retention set), the server and the watchdog in one
task group; ``READY=1`` once the socket serves. A SIGTERM or SIGINT then
stops the server (no new connections, no new requests, the requests already
read are answered), cancels the group, closes the store (every acknowledged
append is committed before its answer was sent), removes the socket and
releases the lock.

Error handling: start-up problems raise :class:`StartupError` with an
operator-facing message (``atlasd serve`` exits 1 on it).
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
from functools import partial
from typing import TYPE_CHECKING

import anyio

from atlasd import __version__
from atlasd.config import Config
from atlasd.daemon.access import AccessPolicy, resolve_group
from atlasd.daemon.gcpolicy import settle_heap
from atlasd.daemon.handlers import DaemonState, Handlers
from atlasd.daemon.hub import Hub
from atlasd.daemon.listener import BoundSocket, ListenerError, adopt, bind_unix
from atlasd.daemon.log import log_event
from atlasd.daemon.server import Server
from atlasd.daemon.signals import StopSignals
from atlasd.daemon.systemd import (
    Notifier,
    extending_start,
    inherited_listener,
    notify_loop,
    watchdog_interval,
)
from atlasd.errors import AtlasdError
from atlasd.packs.loader import PackError

if TYPE_CHECKING:
    from atlasd.eventlog.store import EventStore
    from atlasd.sync.worker import SyncWorker

__all__ = ["StartupError", "serve"]

log = logging.getLogger("atlasd.daemon")

#: How long requests already read may take to finish after SIGTERM before they are cut.
SHUTDOWN_GRACE_S = 10.0
#: The start-up page check reports at most this many problems ...
INTEGRITY_MAX_ERRORS = 10
#: ... and gives up (reported as unchecked) after this long.
INTEGRITY_TIME_LIMIT_S = 30.0
#: glibc's mallopt parameter, and the threshold the daemon pins (glibc's own default).
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024
#: Descriptors needed besides client connections (database, WAL, spool, sync, ...).
_SPARE_FDS = 64


class StartupError(Exception):
    """The daemon cannot start; the message tells the operator why."""


async def serve(config: Config) -> None:
    """Run the daemon until SIGTERM/SIGINT.

    Signals are received from before the store opens until the process ends:
    a first SIGTERM stops the daemon; any further one while it is stopping (a
    second ``systemctl stop``, an impatient Ctrl-C) is absorbed, so a stop can
    never kill the daemon half-way through its last commit (``kill -9``
    remains, and loses nothing acknowledged).
    """
    from atlasd.eventlog.config import StoreConfig
    from atlasd.eventlog.datadir import DataDirLock
    from atlasd.eventlog.store import EventStore

    _raise_fd_limit(config.max_connections + _SPARE_FDS)
    _pin_mmap_threshold()
    notifier = Notifier()
    lock = DataDirLock(config.data_dir)
    try:
        lock.acquire()
    except AtlasdError as exc:
        raise StartupError(exc.message) from exc
    except OSError as exc:
        raise StartupError(f"cannot lock data dir {config.data_dir}: {exc.strerror}") from exc
    try:
        with StopSignals() as signals:
            try:
                async with extending_start(notifier, "opening the event log"):
                    store = await EventStore.open(
                        StoreConfig(
                            data_dir=config.data_dir,
                            synchronous=config.synchronous,
                            max_db_bytes=config.max_db_bytes,
                            packs_dir=config.packs_dir,
                        )
                    )
            except PackError as exc:
                raise StartupError(f"bad pack: {exc}") from exc
            except AtlasdError as exc:
                raise StartupError(f"cannot open the event log: {exc.message}") from exc
            try:
                bound = _listen(config)
                try:
                    await _run(config, store, bound, notifier, signals)
                finally:
                    bound.remove()
            finally:
                with anyio.CancelScope(shield=True):
                    await store.close()
                log_event(log, logging.INFO, "stopped")
    finally:
        lock.release()
        notifier.close()


def _listen(config: Config) -> BoundSocket:
    inherited = inherited_listener()
    if inherited is not None:
        bound = adopt(inherited)
        log_event(log, logging.INFO, "socket_inherited", path=bound.path or "?")
        return bound
    try:
        gid = resolve_group(config.socket_group) if config.socket_group is not None else None
        return bind_unix(config.socket, gid)
    except (ListenerError, ValueError) as exc:
        raise StartupError(str(exc)) from exc


async def _status_line(served: str, store: EventStore, sync: SyncWorker | None) -> str:
    """What ``systemctl status`` shows: the socket served, the log and the sync.

    ``pending`` is counted while appends go on: the figures are taken again
    (a few times at most) until no append landed meanwhile, so the line never
    pairs a new ``last_seq`` with the pending count of an older one.
    """
    for _ in range(_STATUS_TRIES):
        last_seq = store.last_seq
        if sync is not None:
            figures = await sync.status()
            state, pending = figures.state, figures.pending
        else:
            state, pending = "disabled", (await store.sync.state()).pending
        if store.last_seq == last_seq:
            break
    return f"serving on {served}, last_seq {last_seq}, sync {state}, pending {pending}"


#: How often :func:`_status_line` takes its figures again while appends keep landing.
_STATUS_TRIES = 3


async def _run(
    config: Config,
    store: EventStore,
    bound: BoundSocket,
    notifier: Notifier,
    signals: StopSignals,
) -> None:
    hub = Hub(store, store.packs.view_types())
    sync = _sync_worker(config, store)
    state = DaemonState(config=config, store=store, hub=hub, sync=sync)
    server = Server(bound, Handlers(state), AccessPolicy(config))
    server_done = anyio.Event()

    async def run_server(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            await server.serve(task_status=task_status)
        finally:
            server_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        if sync is not None:
            tg.start_soon(sync.run)
        _start_spool(tg, config, store)
        _start_compaction(tg, config, store, state)
        await tg.start(run_server)
        served = str(bound.path) if bound.path is not None else "an inherited socket"

        async def describe() -> str:
            return "stopping" if state.stopping else await _status_line(served, store, sync)

        status = await describe()
        settle_heap()
        notifier.notify("READY=1", f"STATUS={status}")
        tg.start_soon(_check_integrity, state)
        if notifier.enabled:
            tg.start_soon(notify_loop, notifier, watchdog_interval(), describe, status)
        log_event(
            log,
            logging.INFO,
            "ready",
            socket=bound.path,
            data_dir=config.data_dir,
            origin=store.origin,
            last_seq=store.last_seq,
            sync="enabled" if sync is not None else "disabled",
            pid=os.getpid(),
            version=__version__,
        )
        signum = await signals.first()
        log_event(log, logging.INFO, "stopping", signal=signal.Signals(signum).name)
        notifier.notify("STOPPING=1", "STATUS=stopping")
        await server.stop()
        with anyio.move_on_after(SHUTDOWN_GRACE_S) as grace:
            await server_done.wait()
        if grace.cancelled_caught:
            log_event(log, logging.WARNING, "shutdown_grace_expired", grace_s=SHUTDOWN_GRACE_S)
        tg.cancel_scope.cancel()


async def _check_integrity(state: DaemonState) -> None:
    """Check the database's pages once, in the background: the log and ``status`` say
    at once when one is damaged, instead of reads failing later with ``internal``."""
    from atlasd.eventlog.datadir import db_path
    from atlasd.eventlog.integrity import quick_check

    path = db_path(state.config.data_dir)
    report = await anyio.to_thread.run_sync(
        quick_check, path, INTEGRITY_MAX_ERRORS, INTEGRITY_TIME_LIMIT_S, abandon_on_cancel=True
    )
    state.integrity = report
    if report.state == "corrupt":
        log_event(
            log,
            logging.ERROR,
            "database_corrupt",
            path=path,
            problems="; ".join(report.problems),
            hint="stop the daemon, `atlasd verify`, restore a backup",
        )
    elif report.state == "unchecked":
        log_event(log, logging.WARNING, "integrity_unchecked", reason="; ".join(report.problems))
    else:
        log_event(log, logging.INFO, "integrity_ok", ms=report.ms)


def _sync_worker(config: Config, store: EventStore) -> SyncWorker | None:
    if not config.sync.enabled:
        return None
    try:
        from atlasd.sync.worker import SyncWorker
    except ImportError as exc:
        log_event(log, logging.WARNING, "sync_unavailable", error=exc)
        return None
    return SyncWorker(store, config.sync)


def _start_compaction(
    tg: anyio.abc.TaskGroup, config: Config, store: EventStore, state: DaemonState
) -> None:
    from atlasd.daemon.compaction import compaction_rule, run_compaction
    from atlasd.eventlog.autocompact import Compactor

    rule = compaction_rule(config)
    if rule is None:
        return
    state.compactor = Compactor(store, rule)
    tg.start_soon(run_compaction, config, store, state.compactor)


def _start_spool(tg: anyio.abc.TaskGroup, config: Config, store: EventStore) -> None:
    if not config.spool_enabled:
        return
    try:
        from atlasd.daemon.spool import run_spool
    except ImportError:
        return
    tg.start_soon(partial(run_spool, max_line_bytes=config.max_line_bytes), store, config.spool_dir)


def _pin_mmap_threshold() -> None:
    """Keep large buffers (answers, read pages, unsent output) in their own mappings.

    glibc raises its mmap threshold each time a mapped block is freed, after
    which buffers of a few MB come from the heap and stay in the RSS once
    freed: a burst of large answers to clients that never read them would
    leave the daemon that much bigger for good. A fixed threshold returns
    them to the system when freed. No effect outside glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _raise_fd_limit(wanted: int) -> None:
    """Allow ``max_connections`` descriptors, within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
