"""The origin key: a secret this data dir makes once and sends with every ingest call.

The remote records a digest of the key on the origin's first contact and from
then on refuses that origin's events without it, so a holder of the
deployment token alone cannot write under this machine's origin (see
docs/security.md, "Remote"). The key sits beside the database, mode 0600, and
travels with the data dir: a backup restored elsewhere keeps syncing as the
same origin.

Error handling: an unreadable or malformed key file is a :class:`ConfigError`
naming the file; it is never replaced silently, since a new key would lock
this origin out of the remote until an operator re-keys it.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from atlasd.config import ConfigError

__all__ = ["existing_origin_key", "load_or_create_origin_key"]

_KEY = re.compile(r"[0-9a-f]{64}")


def load_or_create_origin_key(path: Path) -> str:
    """The key in ``path``; made (256 random bits, hex) when the file does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the origin key {path}: {exc.strerror}") from exc
    key = secrets.token_hex(32)
    try:
        os.write(fd, (key + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def existing_origin_key(path: Path) -> str | None:
    """The key in ``path``, or None when no key was made yet (nothing is created)."""
    if not os.path.lexists(path):
        return None
    return _read(path)


def _read(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(200)
    except OSError as exc:
        raise ConfigError(f"cannot read the origin key {path}: {exc.strerror}") from exc
    key = raw.decode("ascii", "replace").strip()
    if not _KEY.fullmatch(key):
        raise ConfigError(f"the origin key {path} is not 64 hex digits; restore it from a backup")
    return key
