"""Logging for journald or a terminal: stderr, no timestamps, key=value details.

Each significant operation logs one line ``event_name key=value ...`` through
:func:`log_event`. When stderr is connected to the journal (``JOURNAL_STREAM``
names stderr's device and inode) each line starts with the syslog priority
``<N>`` so journald records the level; timestamps are journald's job.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from atlasd.redact import redact

__all__ = ["configure_logging", "log_event"]

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _Formatter(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        super().__init__()
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = record.getMessage()
        if record.exc_info:
            # Keep a traceback on one journal entry per line, each with the prefix.
            line += "\n" + self.formatException(record.exc_info)
        line = redact(line)  # the ingest token never reaches the log, whatever carried it
        if not self._journal:
            return line
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + part for part in line.split("\n"))


def _stderr_is_journal(env: Mapping[str, str]) -> bool:
    value = env.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def configure_logging(level: str = "info", env: Mapping[str, str] | None = None) -> None:
    """Send the ``atlasd`` loggers to stderr in the daemon's format."""
    env = os.environ if env is None else env
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(journal=_stderr_is_journal(env)))
    root = logging.getLogger("atlasd")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


def _format_value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def log_event(
    logger: logging.Logger, level: int, event: str, exc_info: bool = False, **details: Any
) -> None:
    """Log ``event key=value ...`` (values quoted when they hold spaces or quotes)."""
    if not logger.isEnabledFor(level):
        return
    parts = [event, *(f"{k}={_format_value(v)}" for k, v in details.items())]
    logger.log(level, " ".join(parts), exc_info=exc_info)
