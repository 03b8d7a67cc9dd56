"""Files only their owner may read, whatever the umask: data, backups, exports;
and making a new name in a directory durable.

Resource handling: :func:`create_private` returns an open descriptor the
caller closes. Error handling: ``OSError`` propagates (``FileExistsError``
when the name is taken, ``ELOOP`` for a symbolic link).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE_MODE", "create_private", "fsync_dir", "make_private"]

PRIVATE_MODE = 0o600

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_private(path: str | os.PathLike[str]) -> int:
    """Create ``path`` (never an existing name, never through a link), mode 0600."""
    fd = os.open(path, _CREATE, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # the mode given to open() passes through the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_private(path: Path) -> None:
    """Narrow an existing file to 0600 (a missing one or a link is left alone)."""
    with contextlib.suppress(FileNotFoundError, OSError):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.fchmod(fd, PRIVATE_MODE)
        finally:
            os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the names created, renamed or removed in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
