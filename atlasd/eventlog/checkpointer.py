"""Copy the WAL into the database on a thread of its own, beside the writer.

SQLite checkpoints the WAL inside the commit that takes it past 1,000 pages:
after that commit's fsync, before the COMMIT returns, the committing call
copies every page changed since the last checkpoint into the database file
and syncs it. The group whose commit does this waits for it, and so does
every appender queued behind it; with 64 appenders a group writes ~120 pages,
so about one group in eight paid a 5-8 ms checkpoint, which was the daemon's
p99 (docs/eventlog.md, "Append latency").

The checkpointer runs a *passive* checkpoint from its own connection every
``interval`` while groups of at least :data:`MIN_GROUP` requests commit. A
passive checkpoint takes no write lock, so the writer goes on committing
meanwhile; SQLite's own checkpoint stays on as it was (it restarts the WAL
and bounds its size), and finds little left to copy. Small groups are left
to SQLite: a checkpoint inside the commit then delays one or a few
appenders, while a pass beside the commits, whose fsync of the database
shares the disk with theirs, made a lone appender's p99 worse (measured in
docs/eventlog.md). Nothing about what an acknowledgement means changes: a
group is still answered after its own fsync, and a checkpoint syncs the
database before the WAL may be reused (same ``synchronous`` level as the
writer).

Resource handling: one thread and one sqlite3 connection, both made by
:meth:`Checkpointer.start` and released by :meth:`Checkpointer.close`.

Error handling: a checkpoint that fails (busy, I/O error) is logged once per
kind of error and tried again at the next interval; the writer's own
checkpoint still bounds the WAL meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from atlasd.eventlog.sql import connect

__all__ = ["MIN_GROUP", "Checkpointer"]

log = logging.getLogger("atlasd.eventlog")

#: Requests a committed group must hold for the next pass to run.
MIN_GROUP = 8


class Checkpointer:
    """Passive WAL checkpoints every ``interval_s`` while large groups commit."""

    def __init__(self, path: Path, interval_s: float, synchronous: str = "FULL") -> None:
        self._path = path
        self._interval = interval_s
        self._synchronous = synchronous
        # set by note_commit (any thread), cleared by the checkpointer before each pass
        self._committed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures: set[str] = set()
        #: Checkpoints run since start.
        self.passes = 0

    def start(self) -> None:
        """Open the connection (errors raise here) and start the thread."""
        conn = connect(self._path, synchronous=self._synchronous)
        # never wait for another checkpointer: the next interval tries again
        conn.execute("PRAGMA busy_timeout = 0")
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="atlasd-checkpointer", daemon=True
        )
        self._thread.start()

    def note_commit(self, requests: int) -> None:
        """A group of ``requests`` committed: a large one calls for the next pass."""
        if requests >= MIN_GROUP:
            self._committed.set()

    def close(self) -> None:
        """Stop the thread after its current pass; idempotent."""
        self._stop.set()
        self._committed.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                self._committed.wait()
                if self._stop.is_set():
                    return
                self._committed.clear()
                self._checkpoint(conn)
                if self._stop.wait(self._interval):
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            kind = type(exc).__name__ + ": " + str(exc)
            if kind not in self._failures:
                self._failures.add(kind)
                log.warning("wal_checkpoint_failed error=%r", kind)
            return
        self.passes += 1
