"""The spool drop directory: NDJSON files of events, each appended as one batch.

Any local tool may write a file of events (one JSON object per line, shaped
like an ``append_batch`` item) to ``DATA_DIR/spool/`` under a temporary name
and rename it to ``*.ndjson``. :func:`run_spool` ingests the files present at
start-up and then each new one watchfiles reports, oldest name first.

One file is one atomic batch: every event of it is appended, or none. Events
without an ``event_id`` get one derived from the file's content hash and the
line number (a UUIDv5), so a file ingested twice appends nothing the second
time; the file is removed only after its batch committed, and a crash in
between re-ingests it as duplicates.

A bad file (not UTF-8 JSON lines, an invalid event, a conflict the store
refuses) is moved intact to ``spool/rejected/NAME`` with ``NAME.reason``
beside it, and nothing from it is appended.

Resource handling: a file is read twice, line by line, and never held
whole: a first pass in a worker thread checks every line and hashes the
file; the second feeds ``EventStore.append_stream`` chunks of
``CHUNK_EVENTS`` events parsed on demand, all in one transaction, so memory
stays bounded by one chunk whatever the file's size. Temporary files
(``.tmp-*.part``) left by writers that died are removed after a day.

Error handling: a store that is unavailable (disk full, shutting down) or
fails internally leaves the file in place for the next scan; everything else
about a file rejects that file only and never stops the watcher.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import msgspec
from watchfiles import Change, awatch

from atlasd.daemon.log import log_event
from atlasd.errors import AtlasdError, BadRequest, EventIdConflict, InvalidValue, VersionConflict
from atlasd.eventlog.model import NewEvent
from atlasd.eventlog.store import StreamResult
from atlasd.wire import EventIn

__all__ = [
    "REJECTED_DIR",
    "SpoolCounts",
    "SpoolFileError",
    "SpoolOutcome",
    "SpoolReport",
    "SpoolScan",
    "SpoolStore",
    "derive_event_id",
    "ingest_file",
    "ingest_pending",
    "iter_spool_chunks",
    "parse_spool_file",
    "prepare_spool_dir",
    "run_spool",
    "scan_spool_file",
    "spool_counts",
]

REJECTED_DIR = "rejected"
_SUFFIX = ".ndjson"
_TEMP_PREFIX = ".tmp-"
#: How often the directory is rescanned even without a change notification:
#: covers files renamed in while the watcher was starting.
RESCAN_INTERVAL_S = 2.0
#: Wait this long after a change for more changes before scanning (ms).
_DEBOUNCE_MS = 100
_STEP_MS = 20
#: Temporary files untouched for this long belong to writers that died.
_STALE_TEMP_S = 24 * 3600
#: Events parsed and handed to the store at a time (bounds ingest memory).
CHUNK_EVENTS = 2_000
#: Namespace of derived event ids; fixed forever so derivations stay stable.
_ID_NAMESPACE = uuid.UUID("5b0c7f4e-3c1a-4f59-9d4e-8a6f2c1b7d20")
#: Errors that say the file itself is wrong: reject it.
_FILE_ERRORS = (BadRequest, InvalidValue, EventIdConflict, VersionConflict)

_log = logging.getLogger("atlasd.spool")
_line_decoder = msgspec.json.Decoder(EventIn)


class SpoolStore(Protocol):
    """The part of :class:`~atlasd.eventlog.EventStore` the spool needs."""

    async def append_stream(self, chunks: Iterable[Sequence[NewEvent]]) -> StreamResult: ...


class SpoolOutcome(enum.Enum):
    INGESTED = "ingested"
    REJECTED = "rejected"
    #: Left in place for the next scan (the store could not take it now).
    DEFERRED = "deferred"
    #: Disappeared before it could be read (another reader, or its writer).
    VANISHED = "vanished"


@dataclass(frozen=True, slots=True)
class SpoolReport:
    """What happened to one spool file."""

    name: str
    outcome: SpoolOutcome
    events: int = 0
    duplicates: int = 0
    reason: str | None = None


class SpoolFileError(Exception):
    """The file cannot be ingested; the message says where and why."""


def derive_event_id(content_digest: str, line_no: int) -> str:
    """The id of the event on ``line_no`` (1-based) of a file with this SHA-256."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{content_digest}:{line_no}"))


@dataclass(frozen=True, slots=True)
class SpoolScan:
    """What the first pass keeps of a spool file: no events, only its digest and counts."""

    digest: str
    events: int


def _decode_line(line: bytes, line_no: int) -> EventIn:
    try:
        return _line_decoder.decode(line)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise SpoolFileError(f"line {line_no}: {exc}") from exc


def scan_spool_file(path: Path) -> SpoolScan:
    """First pass: check that every line is an event and hash the file.

    Raises :class:`SpoolFileError` for a line that is not a valid event, and
    ``FileNotFoundError`` if the file is gone.
    """
    digest = hashlib.sha256()
    events = 0
    with path.open("rb") as f:
        for line_no, line in enumerate(f, start=1):
            digest.update(line)
            if line.strip():
                _decode_line(line, line_no)
                events += 1
    return SpoolScan(digest.hexdigest(), events)


def iter_spool_chunks(
    path: Path, scan: SpoolScan, chunk_events: int = CHUNK_EVENTS
) -> Iterator[list[NewEvent]]:
    """Second pass: the file's events, ``chunk_events`` at a time, with derived ids.

    Raises :class:`SpoolFileError` when the file no longer is what
    :func:`scan_spool_file` read (checked at the end, before the last chunk
    is handed over, so a changed file never commits).
    """
    digest = hashlib.sha256()
    chunk: list[NewEvent] = []
    with path.open("rb") as f:
        for line_no, line in enumerate(f, start=1):
            digest.update(line)
            if not line.strip():
                continue
            event = _decode_line(line, line_no).to_new_event()
            if event.event_id is None:
                event.event_id = derive_event_id(scan.digest, line_no)
            chunk.append(event)
            if len(chunk) >= chunk_events:
                yield chunk
                chunk = []
    if digest.hexdigest() != scan.digest:
        raise SpoolFileError("the file changed while it was being ingested")
    if chunk:
        yield chunk


def parse_spool_file(path: Path) -> list[NewEvent]:
    """Every event of a spool file in one list (both passes; for tools and tests)."""
    scan = scan_spool_file(path)
    return [event for chunk in iter_spool_chunks(path, scan) for event in chunk]


def _spool_files(spool_dir: Path) -> list[Path]:
    """Complete spool files, oldest name first."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(spool_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    found.append(Path(entry.path))
    found.sort(key=lambda p: p.name)
    return found


async def ingest_file(store: SpoolStore, path: Path) -> SpoolReport:
    """Append one spool file as one transaction, then remove it (or reject it)."""
    started = time.perf_counter()
    try:
        scan = await anyio.to_thread.run_sync(scan_spool_file, path)
    except FileNotFoundError:
        return SpoolReport(path.name, SpoolOutcome.VANISHED)
    except SpoolFileError as exc:
        return await _reject(path, f"bad_request: {exc}")
    except OSError as exc:
        log_event(_log, logging.WARNING, "spool_unreadable", file=path.name, error=exc)
        return SpoolReport(path.name, SpoolOutcome.DEFERRED, reason=str(exc))

    duplicates = 0
    if scan.events:
        try:
            result = await store.append_stream(iter_spool_chunks(path, scan))
        except _FILE_ERRORS as exc:
            return await _reject(path, f"{exc.code}: {exc.message}")
        except AtlasdError as exc:
            log_event(
                _log, logging.WARNING, "spool_deferred", file=path.name, code=exc.code, error=exc
            )
            return SpoolReport(path.name, SpoolOutcome.DEFERRED, scan.events, reason=str(exc))
        except FileNotFoundError:
            return SpoolReport(path.name, SpoolOutcome.VANISHED)
        except (SpoolFileError, OSError) as exc:
            # changed or unreadable between the passes (nothing was committed): look again later
            log_event(_log, logging.WARNING, "spool_deferred", file=path.name, error=exc)
            return SpoolReport(path.name, SpoolOutcome.DEFERRED, scan.events, reason=str(exc))
        duplicates = result.duplicates

    await anyio.to_thread.run_sync(_remove_committed, path)
    log_event(
        _log,
        logging.INFO,
        "spool_ingested",
        file=path.name,
        events=scan.events,
        duplicates=duplicates,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return SpoolReport(path.name, SpoolOutcome.INGESTED, scan.events, duplicates)


def _remove_committed(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    _fsync_dir(path.parent)


async def _reject(path: Path, reason: str) -> SpoolReport:
    try:
        target = await anyio.to_thread.run_sync(_move_to_rejected, path, reason)
    except FileNotFoundError:
        return SpoolReport(path.name, SpoolOutcome.VANISHED)
    log_event(_log, logging.WARNING, "spool_rejected", file=path.name, to=target, reason=reason)
    return SpoolReport(path.name, SpoolOutcome.REJECTED, reason=reason)


def _move_to_rejected(path: Path, reason: str) -> str:
    """Move ``path`` into ``rejected/`` (never overwriting) with its ``.reason`` file."""
    rejected = path.parent / REJECTED_DIR
    rejected.mkdir(mode=0o700, exist_ok=True)
    target = rejected / path.name
    n = 0
    while target.exists() or target.with_name(target.name + ".reason").exists():
        n += 1
        target = rejected / f"{path.name}.{n}"
    # The reason goes first: a crash in between leaves the file to be retried.
    temp = rejected / f"{_TEMP_PREFIX}{target.name}.reason.part"
    temp.write_text(reason.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(temp, target.with_name(target.name + ".reason"))
    os.replace(path, target)
    _fsync_dir(rejected)
    _fsync_dir(path.parent)
    return f"{REJECTED_DIR}/{target.name}"


def _remove_stale_temps(spool_dir: Path, now: float) -> None:
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(spool_dir):
            if not entry.name.startswith(_TEMP_PREFIX):
                continue
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_TEMP_S:
                    os.unlink(entry.path)
                    log_event(_log, logging.WARNING, "spool_stale_temp_removed", file=entry.name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def ingest_pending(store: SpoolStore, spool_dir: Path) -> list[SpoolReport]:
    """Ingest every complete file now in ``spool_dir``, oldest name first."""
    await anyio.to_thread.run_sync(_remove_stale_temps, spool_dir, time.time())
    reports = []
    for path in await anyio.to_thread.run_sync(_spool_files, spool_dir):
        reports.append(await ingest_file(store, path))
    return reports


def _is_spool_change(change: Change, path: str) -> bool:
    return change != Change.deleted and path.endswith(_SUFFIX)


def prepare_spool_dir(spool_dir: Path) -> None:
    """Create ``spool/`` (mode 0700 unless it exists already) and ``spool/rejected/``."""
    spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (spool_dir / REJECTED_DIR).mkdir(mode=0o700, exist_ok=True)


async def run_spool(
    store: SpoolStore, spool_dir: Path, *, rescan_interval: float = RESCAN_INTERVAL_S
) -> None:
    """Ingest ``spool_dir`` now and whenever files arrive, until cancelled."""
    await anyio.to_thread.run_sync(prepare_spool_dir, spool_dir)
    log_event(_log, logging.INFO, "spool_watching", dir=spool_dir)
    await ingest_pending(store, spool_dir)
    # The watcher thread cannot be cancelled, only told to stop: a sibling
    # task sets this event as soon as cancellation arrives, so a daemon stop
    # never waits for the watcher's timeout.
    stop = anyio.Event()

    async def stop_on_cancel() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            stop.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_cancel)
        async for _changes in awatch(
            spool_dir,
            watch_filter=_is_spool_change,
            recursive=False,
            debounce=_DEBOUNCE_MS,
            step=_STEP_MS,
            rust_timeout=int(rescan_interval * 1000),
            yield_on_timeout=True,
            stop_event=stop,
        ):
            # A notification (or the periodic timeout) only says "look": the
            # scan decides, so a missed or coalesced event costs nothing.
            await ingest_pending(store, spool_dir)
        tg.cancel_scope.cancel()


class SpoolCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Files in the spool: waiting to be appended, and refused (``rejected/``)."""

    waiting: int
    rejected: int


def spool_counts(spool_dir: Path) -> SpoolCounts:
    """Count the spool's files for ``status`` (regular files only; nothing is opened)."""

    def count(where: Path, keep: Callable[[str], bool]) -> int:
        try:
            with os.scandir(where) as entries:
                return sum(1 for e in entries if keep(e.name) and e.is_file(follow_symlinks=False))
        except OSError:
            return 0

    return SpoolCounts(
        waiting=count(spool_dir, lambda name: name.endswith(_SUFFIX)),
        rejected=count(
            spool_dir / REJECTED_DIR,
            lambda name: not name.endswith(".reason") and not name.startswith("."),
        ),
    )
