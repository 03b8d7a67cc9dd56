"""The spool drop directory: NDJSON files of events, each appended as one batch.

Any local tool may write a file of events (one JSON object per line, shaped
like an ``append_batch`` item) to ``DATA_DIR/spool/`` following the
producer's contract of :mod:`atlasd.spoolname` (temporary name, fsync,
rename). :func:`run_spool` ingests the files present at start-up and then
each new one watchfiles reports, oldest name first.

One file is one atomic batch: every event of it is appended, or none. Events
without an ``event_id`` get one derived from the file's name, content hash
and line number (a UUIDv5): the same file ingested again after a crash
appends nothing, while two files with the same content are two sets of
events. The file is removed only after its batch committed.

The directory is a trust boundary: in the system-service layout every member
of the socket group may write into it. So nothing in it is reached by path:
entries are opened relative to the directory's descriptor with
``O_NOFOLLOW | O_NONBLOCK``, and the open descriptor is checked with
``fstat`` (a regular file with one link) before one byte is read; symbolic
links, FIFOs, sockets, devices, directories and hard links are rejected
without being followed or opened for real. ``rejected/`` is created by the
daemon, checked (owner, mode) and held open by descriptor; the daemon's own
files in it are created with ``O_EXCL | O_NOFOLLOW`` and mode 0600.

A file that cannot be read, decoded or accepted is moved intact to
``spool/rejected/NAME`` with ``NAME.reason`` beside it, once, and nothing
from it is appended. A file that cannot even be moved is left alone, logged
once and skipped from then on.

Resource handling: a file is read twice through the same descriptor, line
by line, and never held whole: a first pass in a worker thread checks every
line and hashes the file; the second feeds ``EventStore.append_stream``
chunks of ``CHUNK_EVENTS`` events, all in one transaction. Both passes read
no further than the size the file had when it was opened, and a line longer
than the socket's line limit rejects the file after reading at most that
many bytes of it, so memory stays bounded whatever the file holds (a sparse
1 GiB file with no newline costs one line's worth). A file still changing
(modified less than ``SETTLE_S`` ago, or its size or mtime moved during
the first pass) is left for a later scan before the store is touched, so
a writer that never finishes never holds the store's writer. Temporary
files (``.tmp-*``) left by writers that died are removed after a day.

Error handling: a store that is unavailable (disk full, shutting down) or
fails internally leaves the file in place for the next scan; everything else
about a file rejects that file only and never stops the watcher.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import io
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import msgspec
from watchfiles import Change, awatch

from atlasd import wire
from atlasd.config import DEFAULT_MAX_LINE_BYTES
from atlasd.daemon.log import log_event
from atlasd.errors import AtlasdError, BadRequest, EventIdConflict, InvalidValue, VersionConflict
from atlasd.eventlog.store import StreamResult
from atlasd.events import NewEvent
from atlasd.events.ids import derive_event_id
from atlasd.spoolname import REJECTED_DIR, TEMP_PREFIX, TEMP_SUFFIX, is_spool_name, is_temp_name
from atlasd.wire import SpoolCounts

__all__ = [
    "CHUNK_EVENTS",
    "REJECTED_DIR",
    "SpoolCounts",
    "SpoolDir",
    "SpoolDirError",
    "SpoolFileChanged",
    "SpoolFileError",
    "SpoolOutcome",
    "SpoolReport",
    "SpoolScan",
    "SpoolStore",
    "ingest_file",
    "ingest_pending",
    "iter_spool_chunks",
    "parse_spool_file",
    "prepare_spool_dir",
    "run_spool",
    "scan_spool_file",
    "spool_counts",
]

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
#: A file modified less than this long ago may still be written: it waits (the daemon's
#: watcher looks again once it has settled). Producers that follow the contract lose
#: only this much latency.
SETTLE_S = 0.5
#: Read buffer of one file pass.
_READ_BLOCK = 64 * 1024
#: Lines between two looks at the stop flag (a daemon stop never waits for a whole file).
_STOP_EVERY = 1024
#: Errors that say the file itself is wrong: reject it.
_FILE_ERRORS = (BadRequest, InvalidValue, EventIdConflict, VersionConflict)

# Entries are opened without following links, without blocking (a FIFO would wait for
# a writer), and without becoming our controlling terminal.
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PRIVATE_FILE_MODE = 0o600
_PRIVATE_DIR_MODE = 0o700

_log = logging.getLogger("atlasd.spool")
_line_decoder = msgspec.json.Decoder(NewEvent)


class SpoolStore(Protocol):
    """The part of :class:`~atlasd.eventlog.EventStore` the spool needs."""

    async def append_stream(self, chunks: Iterable[Sequence[NewEvent]]) -> StreamResult: ...


class SpoolOutcome(enum.Enum):
    INGESTED = "ingested"
    REJECTED = "rejected"
    #: Left in place for the next scan (the store could not take it now, or it is changing).
    DEFERRED = "deferred"
    #: Disappeared before it could be read (another reader, or its writer).
    VANISHED = "vanished"
    #: Could not be ingested nor moved to ``rejected/``; skipped from now on.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class SpoolReport:
    """What happened to one spool file."""

    name: str
    outcome: SpoolOutcome
    events: int = 0
    duplicates: int = 0
    reason: str | None = None
    #: Deferred because it was modified moments ago (it may still be written).
    fresh: bool = False


class SpoolFileError(Exception):
    """The file cannot be ingested; the message says where and why."""


class SpoolFileChanged(SpoolFileError):
    """The file changed while it was read: still being written; try again later."""


class _Fresh(SpoolFileChanged):
    """Modified moments ago: maybe still being written; looked at again once settled."""


class SpoolDirError(Exception):
    """The spool directory (or its ``rejected/``) cannot be trusted; spooling is off."""


class _Stopped(Exception):
    """The daemon is stopping: the file is left for the next start."""


# (st_dev, st_ino, st_size, st_mtime_ns): a file that keeps these was not written meanwhile.
_Identity = tuple[int, int, int, int]


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class SpoolScan:
    """What the first pass keeps of a spool file: no events, only its digest and counts."""

    name: str
    digest: str
    events: int
    #: Bytes read (the size at open); the second pass reads no further.
    size: int
    identity: _Identity


def _decode_line(line: bytes, line_no: int) -> NewEvent:
    try:
        return _line_decoder.decode(line)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise SpoolFileError(f"line {line_no}: {wire.explain_decode_error(exc)}") from exc


def _lines(
    fd: int, size: int, max_line: int, stop: threading.Event | None
) -> Iterator[tuple[int, bytes]]:
    """``(line_no, line)`` of the first ``size`` bytes of ``fd``, each at most ``max_line``
    bytes (newline excluded); a longer line raises after reading ``max_line + 1`` of it."""
    os.lseek(fd, 0, os.SEEK_SET)
    reader = io.BufferedReader(io.FileIO(fd, "rb", closefd=False), _READ_BLOCK)
    remaining = size
    line_no = 0
    while remaining > 0:
        line = reader.readline(min(max_line + 1, remaining))
        if not line:
            return  # truncated under us: the identity check says so
        remaining -= len(line)
        line_no += 1
        if len(line) > max_line and not line.endswith(b"\n"):
            raise SpoolFileError(f"line {line_no}: longer than {max_line} bytes")
        if stop is not None and line_no % _STOP_EVERY == 0 and stop.is_set():
            raise _Stopped
        yield line_no, line


def _check_entry(fd: int) -> os.stat_result:
    """The open entry's status, if it is something the spool may read."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise SpoolFileError(f"not a regular file ({_kind(st.st_mode)}); only files are ingested")
    if st.st_nlink != 1:
        raise SpoolFileError("the file has other hard links; only a file's one name is ingested")
    return st


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a file"


def _open_entry(dir_fd: int, name: str) -> int:
    """Open one spool entry safely (see the module doc); raises SpoolFileError to reject."""
    try:
        fd = os.open(name, _ENTRY_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpoolFileError("a symbolic link; links are never followed") from exc
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
            raise SpoolFileError("a socket or device; only files are ingested") from exc
        if isinstance(exc, PermissionError):
            raise SpoolFileError("not readable by the daemon (permissions)") from exc
        raise
    try:
        _check_entry(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _scan_fd(
    fd: int,
    name: str,
    max_line: int,
    stop: threading.Event | None = None,
    settle_s: float = 0.0,
) -> SpoolScan:
    """First pass: check that every line is an event and hash the file."""
    before = os.fstat(fd)
    if settle_s and time.time_ns() - before.st_mtime_ns < settle_s * 1e9:
        raise _Fresh("modified moments ago; waiting for it to settle")
    digest = hashlib.sha256()
    events = 0
    for line_no, line in _lines(fd, before.st_size, max_line, stop):
        digest.update(line)
        if line.strip():
            _decode_line(line, line_no)
            events += 1
    if _identity(os.fstat(fd)) != _identity(before):
        raise SpoolFileChanged("the file is still being written")
    return SpoolScan(name, digest.hexdigest(), events, before.st_size, _identity(before))


def _chunks_fd(
    fd: int,
    scan: SpoolScan,
    max_line: int,
    chunk_events: int = CHUNK_EVENTS,
    stop: threading.Event | None = None,
) -> Iterator[list[NewEvent]]:
    """Second pass: the events, ``chunk_events`` at a time, with derived ids; raises
    :class:`SpoolFileChanged` before the last chunk when the file is not what was scanned."""
    digest = hashlib.sha256()
    chunk: list[NewEvent] = []
    for line_no, line in _lines(fd, scan.size, max_line, stop):
        digest.update(line)
        if not line.strip():
            continue
        event = _decode_line(line, line_no)
        if event.event_id is None:
            event.event_id = derive_event_id(scan.digest, line_no, scan.name)
        chunk.append(event)
        if len(chunk) >= chunk_events:
            yield chunk
            chunk = []
    if digest.hexdigest() != scan.digest or _identity(os.fstat(fd)) != scan.identity:
        raise SpoolFileChanged("the file changed while it was being ingested")
    if chunk:
        yield chunk


def _fsync_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.fsync(fd)


def _open_own_dir(name: str, dir_fd: int | None) -> int | None:
    """Open a directory the daemon made; None when the entry is missing or not one."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return None
        raise


class SpoolDir:
    """The spool directory and its ``rejected/``, both held by descriptor.

    Use as a context manager (or :meth:`close`); :meth:`open` creates what
    is missing and refuses a directory the daemon does not own.
    """

    def __init__(
        self, path: Path, fd: int, rejected_fd: int, max_line_bytes: int, settle_s: float = 0.0
    ) -> None:
        self.path = path
        self.fd = fd
        self.rejected_fd = rejected_fd
        self.max_line_bytes = max_line_bytes
        #: Files modified more recently than this wait (see :data:`SETTLE_S`).
        self.settle_s = settle_s
        #: Set when the daemon stops: reading threads give up at the next look.
        self.stop = threading.Event()
        # names that could not be moved to rejected/ (skipped), or already logged as
        # waiting: each is logged once, not at every rescan
        self._skipped: set[str] = set()
        self._noted: set[str] = set()

    @classmethod
    def open(
        cls, path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, settle_s: float = 0.0
    ) -> SpoolDir:
        """Open (creating it 0700 if missing) ``path`` and its ``rejected/``.

        Error handling: :class:`SpoolDirError` when ``path`` is a link, not a
        directory, or owned by another user.
        """
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=_PRIVATE_DIR_MODE, parents=True)
        try:
            fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            raise SpoolDirError(f"cannot open spool dir {path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise SpoolDirError(
                    f"spool dir {path} is owned by uid {st.st_uid}, not by the daemon "
                    f"(uid {os.geteuid()}); not using it"
                )
            if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
                log_event(
                    _log,
                    logging.WARNING,
                    "spool_dir_not_sticky",
                    dir=path,
                    mode=oct(stat.S_IMODE(st.st_mode)),
                    hint="set the sticky bit so writers cannot remove each other's files",
                )
            rejected_fd = _ensure_rejected(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, rejected_fd, max_line_bytes, settle_s)

    def close(self) -> None:
        for fd in (self.rejected_fd, self.fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SpoolDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- listing ---------------------------------------------------------------

    def pending_names(self) -> list[str]:
        """Names to ingest, oldest first (any kind of entry: opening decides)."""
        with os.scandir(self.fd) as entries:
            names = sorted(entry.name for entry in entries if is_spool_name(entry.name))
        present = set(names)
        self._skipped &= present
        self._noted &= present
        return [name for name in names if name not in self._skipped]

    def remove_stale_temps(self, now: float) -> None:
        with os.scandir(self.fd) as entries:
            stale = [entry.name for entry in entries if is_temp_name(entry.name)]
        for name in stale:
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
                if now - st.st_mtime > _STALE_TEMP_S:
                    os.unlink(name, dir_fd=self.fd)
                    log_event(_log, logging.WARNING, "spool_stale_temp_removed", file=name)

    # -- one file ----------------------------------------------------------------

    async def ingest(self, store: SpoolStore, name: str) -> SpoolReport:
        """Append one file as one transaction, then remove it (or reject it)."""
        started = time.perf_counter()
        try:
            fd = await anyio.to_thread.run_sync(_open_entry, self.fd, name)
        except FileNotFoundError:
            return SpoolReport(name, SpoolOutcome.VANISHED)
        except SpoolFileError as exc:
            return await self._reject(name, f"bad_request: {exc}", None)
        except OSError as exc:
            return self._defer(name, exc)
        try:
            return await self._ingest_open(store, name, fd, started)
        finally:
            os.close(fd)

    async def _ingest_open(
        self, store: SpoolStore, name: str, fd: int, started: float
    ) -> SpoolReport:
        try:
            scan = await anyio.to_thread.run_sync(
                _scan_fd, fd, name, self.max_line_bytes, self.stop, self.settle_s
            )
        except (SpoolFileChanged, _Stopped, OSError) as exc:
            return self._defer(name, exc)
        except SpoolFileError as exc:
            return await self._reject(name, f"bad_request: {exc}", _identity(os.fstat(fd)))

        duplicates = 0
        if scan.events:
            chunks = _chunks_fd(fd, scan, self.max_line_bytes, CHUNK_EVENTS, self.stop)
            try:
                result = await store.append_stream(chunks)
            except _FILE_ERRORS as exc:
                return await self._reject(name, f"{exc.code}: {exc.message}", scan.identity)
            except AtlasdError as exc:
                log_event(
                    _log, logging.WARNING, "spool_deferred", file=name, code=exc.code, error=exc
                )
                return SpoolReport(name, SpoolOutcome.DEFERRED, scan.events, reason=str(exc))
            except (SpoolFileChanged, _Stopped, OSError) as exc:
                return self._defer(name, exc, scan.events)
            except SpoolFileError as exc:
                return await self._reject(name, f"bad_request: {exc}", scan.identity)
            except Exception as exc:
                # A bug, not the file's fault as far as we know; retrying would repeat it
                # at every rescan, so the file is set aside with the error.
                log_event(
                    _log, logging.ERROR, "spool_failed", file=name, error=repr(exc), exc_info=True
                )
                return await self._reject(
                    name, f"internal: {type(exc).__name__}: {exc}", scan.identity
                )
            duplicates = result.duplicates

        await anyio.to_thread.run_sync(self._remove_committed, name, scan.identity)
        log_event(
            _log,
            logging.INFO,
            "spool_ingested",
            file=name,
            events=scan.events,
            duplicates=duplicates,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return SpoolReport(name, SpoolOutcome.INGESTED, scan.events, duplicates)

    def _defer(self, name: str, exc: BaseException, events: int = 0) -> SpoolReport:
        """Leave the file for a later scan; say so once per file, not at every rescan."""
        reason = str(exc) or type(exc).__name__
        if name not in self._noted and not isinstance(exc, (_Stopped, _Fresh)):
            self._noted.add(name)
            level = logging.INFO if isinstance(exc, SpoolFileChanged) else logging.WARNING
            log_event(_log, level, "spool_deferred", file=name, reason=reason)
        fresh = isinstance(exc, _Fresh)
        return SpoolReport(name, SpoolOutcome.DEFERRED, events, reason=reason, fresh=fresh)

    def _remove_committed(self, name: str, identity: _Identity) -> None:
        # Only the file that was ingested: its writer may have put a new one there since.
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            if (st.st_dev, st.st_ino) == identity[:2]:
                os.unlink(name, dir_fd=self.fd)
        _fsync_fd(self.fd)

    async def _reject(self, name: str, reason: str, identity: _Identity | None) -> SpoolReport:
        try:
            target = await anyio.to_thread.run_sync(self._move_to_rejected, name, reason, identity)
        except FileNotFoundError:
            return SpoolReport(name, SpoolOutcome.VANISHED)
        except OSError as exc:
            self._skipped.add(name)
            log_event(
                _log,
                logging.ERROR,
                "spool_unmovable",
                file=name,
                reason=reason,
                error=exc.strerror or exc,
                hint="remove it by hand; it is skipped until then",
            )
            return SpoolReport(name, SpoolOutcome.SKIPPED, reason=reason)
        if target is None:
            return SpoolReport(name, SpoolOutcome.VANISHED)  # replaced: a new file to look at
        log_event(_log, logging.WARNING, "spool_rejected", file=name, to=target, reason=reason)
        return SpoolReport(name, SpoolOutcome.REJECTED, reason=reason)

    def _move_to_rejected(self, name: str, reason: str, identity: _Identity | None) -> str | None:
        """Move ``name`` into ``rejected/`` (never overwriting) with its ``.reason`` file."""
        if identity is not None:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            if (st.st_dev, st.st_ino) != identity[:2]:
                return None
        rfd = self.rejected_fd
        target, n = name, 0
        while _exists(target, rfd) or _exists(target + ".reason", rfd):
            n += 1
            target = f"{name}.{n}"
        # The reason goes first: a crash in between leaves the file to be retried.
        temp = f"{TEMP_PREFIX}{target}.reason{TEMP_SUFFIX}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=rfd)  # ours, left by a crash
        fd = os.open(temp, _NEW_FILE_FLAGS, _PRIVATE_FILE_MODE, dir_fd=rfd)
        try:
            os.fchmod(fd, _PRIVATE_FILE_MODE)
            os.write(fd, reason.rstrip("\n").encode("utf-8", "replace") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, target + ".reason", src_dir_fd=rfd, dst_dir_fd=rfd)
        os.rename(name, target, src_dir_fd=self.fd, dst_dir_fd=rfd)
        _fsync_fd(rfd)
        _fsync_fd(self.fd)
        return f"{REJECTED_DIR}/{target}"

    # -- every file ------------------------------------------------------------------

    async def ingest_pending(self, store: SpoolStore) -> list[SpoolReport]:
        """Ingest every complete file now in the directory, oldest name first."""
        await anyio.to_thread.run_sync(self.remove_stale_temps, time.time())
        reports = []
        for name in await anyio.to_thread.run_sync(self.pending_names):
            reports.append(await self.ingest(store, name))
        return reports


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _ensure_rejected(spool_fd: int, spool_path: Path) -> int:
    """Open ``rejected/``, created by the daemon; anything else found there is moved aside."""
    for _ in range(3):
        with contextlib.suppress(FileExistsError):
            os.mkdir(REJECTED_DIR, _PRIVATE_DIR_MODE, dir_fd=spool_fd)
        fd = _open_own_dir(REJECTED_DIR, spool_fd)
        if fd is not None:
            st = os.fstat(fd)
            if st.st_uid == os.geteuid():
                if stat.S_IMODE(st.st_mode) & 0o077:
                    os.fchmod(fd, _PRIVATE_DIR_MODE)
                return fd
            os.close(fd)
        # Not ours (another user's directory, a link, a file): set it aside and make ours.
        aside = f".untrusted-{REJECTED_DIR}-{time.time_ns()}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(REJECTED_DIR, aside, src_dir_fd=spool_fd, dst_dir_fd=spool_fd)
            log_event(
                _log, logging.WARNING, "spool_rejected_dir_replaced", dir=spool_path, to=aside
            )
    raise SpoolDirError(f"cannot create a private {spool_path / REJECTED_DIR}")


def prepare_spool_dir(spool_dir: Path) -> None:
    """Create ``spool/`` (mode 0700 unless it exists already) and a private ``spool/rejected/``."""
    SpoolDir.open(spool_dir).close()


# -- path-based helpers (tools, tests, benchmarks) ------------------------------------------


def _open_path(path: Path) -> int:
    dir_fd = os.open(path.parent, _DIR_FLAGS)
    try:
        return _open_entry(dir_fd, path.name)
    finally:
        os.close(dir_fd)


def scan_spool_file(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> SpoolScan:
    """First pass over ``path`` (see :class:`SpoolDir`); raises :class:`SpoolFileError`."""
    fd = _open_path(path)
    try:
        return _scan_fd(fd, path.name, max_line_bytes)
    finally:
        os.close(fd)


def iter_spool_chunks(
    path: Path,
    scan: SpoolScan,
    chunk_events: int = CHUNK_EVENTS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[list[NewEvent]]:
    """Second pass over ``path``; raises :class:`SpoolFileChanged` if it is not what was
    scanned (checked before the last chunk is handed over, so a changed file never commits)."""
    fd = _open_path(path)
    try:
        yield from _chunks_fd(fd, scan, max_line_bytes, chunk_events)
    finally:
        os.close(fd)


def parse_spool_file(path: Path) -> list[NewEvent]:
    """Every event of a spool file in one list (both passes; for tools and tests)."""
    scan = scan_spool_file(path)
    return [event for chunk in iter_spool_chunks(path, scan) for event in chunk]


async def ingest_file(
    store: SpoolStore, path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> SpoolReport:
    """Ingest the spool file ``path`` (in a spool directory the daemon owns)."""
    with SpoolDir.open(path.parent, max_line_bytes) as spool:
        return await spool.ingest(store, path.name)


async def ingest_pending(
    store: SpoolStore, spool_dir: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> list[SpoolReport]:
    """Ingest every complete file now in ``spool_dir``, oldest name first."""
    with SpoolDir.open(spool_dir, max_line_bytes) as spool:
        return await spool.ingest_pending(store)


async def _ingest_settled(spool: SpoolDir, store: SpoolStore) -> None:
    """Ingest what is there; look again as long as some file was too fresh to take."""
    while True:
        reports = await spool.ingest_pending(store)
        if not any(r.outcome is SpoolOutcome.DEFERRED and r.fresh for r in reports):
            return
        await anyio.sleep(spool.settle_s)


def _is_spool_change(change: Change, path: str) -> bool:
    return change != Change.deleted and is_spool_name(os.path.basename(path))


async def run_spool(
    store: SpoolStore,
    spool_dir: Path,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    rescan_interval: float = RESCAN_INTERVAL_S,
) -> None:
    """Ingest ``spool_dir`` now and whenever files arrive, until cancelled.

    A spool directory that cannot be trusted turns spooling off (logged as
    an error); the daemon goes on serving its socket.
    """
    try:
        spool = await anyio.to_thread.run_sync(SpoolDir.open, spool_dir, max_line_bytes, SETTLE_S)
    except (SpoolDirError, OSError) as exc:
        log_event(_log, logging.ERROR, "spool_disabled", dir=spool_dir, error=exc)
        return
    # The watcher thread cannot be cancelled, only told to stop: a sibling
    # task sets this event as soon as cancellation arrives, so a daemon stop
    # never waits for the watcher's timeout (nor for a file being read).
    stop = anyio.Event()

    async def stop_on_cancel() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            stop.set()
            spool.stop.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_cancel)
            log_event(_log, logging.INFO, "spool_watching", dir=spool_dir)
            await _ingest_settled(spool, store)
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
                await _ingest_settled(spool, store)
            tg.cancel_scope.cancel()
    finally:
        spool.close()


def spool_counts(spool_dir: Path) -> SpoolCounts:
    """Count the spool's files for ``status`` (regular files only; nothing is opened)."""

    def count(where: Path, keep: Callable[[str], bool]) -> int:
        try:
            with os.scandir(where) as entries:
                return sum(1 for e in entries if keep(e.name) and e.is_file(follow_symlinks=False))
        except OSError:
            return 0

    return SpoolCounts(
        waiting=count(spool_dir, is_spool_name),
        rejected=count(
            spool_dir / REJECTED_DIR,
            lambda name: not name.endswith(".reason") and not name.startswith("."),
        ),
    )
