"""The data dir: its creation, its files, and the lock that keeps one daemon in it.

Its default place is the configuration's (:func:`atlasd.config.default_data_dir`).

Layout: ``DATA_DIR/atlasd.db`` (with ``-wal`` and ``-shm``), ``DATA_DIR/spool/``,
``DATA_DIR/atlasd.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from atlasd.errors import Unavailable
from atlasd.files import create_private, make_private

__all__ = [
    "DB_NAME",
    "LOCK_NAME",
    "DataDirLock",
    "db_bytes",
    "db_path",
    "ensure_data_dir",
    "secure_db_files",
]

DB_NAME = "atlasd.db"
LOCK_NAME = "atlasd.lock"


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data dir (mode 0700, parents as needed) and return it."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return data_dir


def secure_db_files(data_dir: Path) -> None:
    """Make the database (and its ``-wal``, ``-shm``) 0600 whatever the umask.

    A missing database is created empty with that mode before SQLite opens
    it; SQLite gives its ``-wal`` and ``-shm`` files the database's mode.
    """
    path = db_path(data_dir)
    with contextlib.suppress(FileExistsError):
        os.close(create_private(path))
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOCK_NAME):
        make_private(data_dir / name)


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def db_bytes(db: Path) -> int:
    """Size of the database file plus its write-ahead log (0 for what does not exist)."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(f"{db}{suffix}").st_size
    return total


class DataDirLock:
    """An exclusive ``flock`` on ``DATA_DIR/atlasd.lock`` for as long as it is held.

    Resource handling: the lock file stays (it holds the last owner's pid);
    the lock itself is released when the descriptor closes, so a crashed
    owner never leaves a stale lock.

    Error handling: raises :class:`Unavailable` naming the pid that holds it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        ensure_data_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise Unavailable(
                f"another atlasd is using {self.path.parent} (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
