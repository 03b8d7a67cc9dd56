"""Archive records altered as someone with write access to the database file could."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from atlasd.eventlog.datadir import db_path


def point_archive_record_at(data_dir: Path, first_seq: int, file: str) -> None:
    """Make the archive record starting at ``first_seq`` name ``file``: its guarding
    trigger is dropped for the update and put back as it was."""
    conn = sqlite3.connect(db_path(data_dir))
    try:
        (trigger,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'archives_refuse_update'"
        ).fetchone()
        with conn:
            conn.execute("DROP TRIGGER archives_refuse_update")
            conn.execute("UPDATE archives SET file = ? WHERE first_seq = ?", (file, first_seq))
            conn.execute(trigger)
    finally:
        conn.close()
