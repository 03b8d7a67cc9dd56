"""A bounded check of the database's pages, run when the daemon starts.

``PRAGMA quick_check`` reads every page (not the indexes' contents, which
``integrity_check`` also compares) and reports at most ``max_errors``
problems. A damaged page would otherwise show only later, as ``internal``
failures of the reads that touch it; with this check the log and ``status``
say so from the start. The check stops at ``time_limit_s`` (a large
database is then reported as not fully checked, never blocked on).

Resource handling: its own read-only connection, closed before returning.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from atlasd.reports import CHECKING, IntegrityReport

__all__ = ["CHECKING", "IntegrityReport", "quick_check"]

#: SQLite virtual-machine steps between two looks at the clock.
_PROGRESS_STEPS = 10_000


def quick_check(path: Path, max_errors: int = 10, time_limit_s: float = 10.0) -> IntegrityReport:
    """Run ``PRAGMA quick_check(max_errors)`` on ``path`` for at most ``time_limit_s``."""
    started = time.monotonic()
    deadline = started + time_limit_s

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return IntegrityReport(state="unchecked", problems=[f"cannot open: {exc}"], ms=elapsed())
    try:
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
        rows = conn.execute(f"PRAGMA quick_check({int(max_errors)})").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            return IntegrityReport(
                state="unchecked", problems=[f"stopped after {time_limit_s} s"], ms=elapsed()
            )
        return IntegrityReport(state="corrupt", problems=[str(exc)], ms=elapsed())
    except sqlite3.DatabaseError as exc:
        return IntegrityReport(state="corrupt", problems=[str(exc)], ms=elapsed())
    finally:
        conn.close()
    problems = [str(row[0]) for row in rows]
    if problems == ["ok"]:
        return IntegrityReport(state="ok", ms=elapsed())
    return IntegrityReport(state="corrupt", problems=problems, ms=elapsed())
