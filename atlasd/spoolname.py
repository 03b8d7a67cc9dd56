"""Spool file naming: the one rule shared by the writers (clients) and the daemon.

The producer's contract: write the file under a temporary name
(:data:`TEMP_PREFIX` ... :data:`TEMP_SUFFIX`), fsync it, then rename it to
its final name (ending in :data:`SPOOL_SUFFIX`, not starting with a dot) in
the same directory. The daemon ingests final names only, so it never sees a
file before it is complete; a file still changing when the daemon reads it
is left for a later scan.

Final names sort by creation time (nanoseconds first), which is the order
the daemon ingests them in, and are unique per writer (pid and random bits):
the daemon derives ids for events without one from the file's name and
content, so two files never share a name.
"""

from __future__ import annotations

import os
import secrets
import time

__all__ = [
    "REJECTED_DIR",
    "SPOOL_SUFFIX",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "is_spool_name",
    "is_temp_name",
    "new_spool_names",
]

#: Only files with this suffix are ingested.
SPOOL_SUFFIX = ".ndjson"
#: Files being written start with this and end in :data:`TEMP_SUFFIX`; never ingested.
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
#: Where the daemon moves files it cannot ingest, with a ``NAME.reason`` beside each.
REJECTED_DIR = "rejected"


def new_spool_names() -> tuple[str, str]:
    """A fresh ``(temporary, final)`` pair of names for one spool file."""
    stem = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
    return f"{TEMP_PREFIX}{stem}{TEMP_SUFFIX}", f"{stem}{SPOOL_SUFFIX}"


def is_spool_name(name: str) -> bool:
    """Whether the daemon ingests a directory entry of this name."""
    return name.endswith(SPOOL_SUFFIX) and not name.startswith(".")


def is_temp_name(name: str) -> bool:
    """Whether this is a file still being written (by a client or by the daemon)."""
    return name.startswith(TEMP_PREFIX)
