"""Online backup while appends keep coming: the copy is one consistent snapshot."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from atlasd.client import Client
from atlasd.eventlog.backup import backup
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess


def test_a_backup_under_concurrent_appends_is_a_consistent_snapshot(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """Copies taken mid-load hold seqs 1..N with no gap, intact, each a committed state."""
    stop = threading.Event()

    def load() -> None:
        with Client(daemon.socket, spool=False) as client:
            while not stop.is_set():
                client.append_batch(
                    [NewEvent(stream=f"tool:{i % 5}", type="L", data={"i": i}) for i in range(50)]
                )

    writer = threading.Thread(target=load)
    writer.start()
    infos = []
    try:
        with Client(daemon.socket, spool=False) as client:
            client.ping()
            while client.status().last_seq < 200:
                pass
        for n in range(3):
            infos.append(backup(daemon.data_dir, tmp_path / f"b{n}.db"))
    finally:
        stop.set()
        writer.join()
    for info in infos:
        with sqlite3.connect(info.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            count, low, high = conn.execute(
                "SELECT count(*), min(seq), max(seq) FROM events"
            ).fetchone()
        assert (count, low, high) == (info.events, 1, info.last_seq)
        # Batches of 50 commit whole: a snapshot never holds part of one.
        assert info.last_seq % 50 == 0
    assert infos[-1].last_seq >= 200
