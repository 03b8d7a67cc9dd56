"""The spool directory as a trust boundary: what a member of the socket group can drop
there (links, FIFOs, sockets, huge or endless files, impostor directories) against a
real daemon subprocess, with real files."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atlasd.spoolname import REJECTED_DIR
from tests.support.daemon import DaemonProcess, running_daemon

#: How long a test waits for the spool watcher to act (it rescans every 2 s).
WAIT_S = 20.0


def _line(n: int, **extra: Any) -> bytes:
    return json.dumps({"stream": "s:spool", "type": "Dropped", "data": {"n": n}, **extra}).encode()


def _drop(spool: Path, name: str, body: bytes) -> Path:
    """Write a file as the producer's contract says: temporary name, then rename."""
    temp = spool / f".tmp-{name}.part"
    temp.write_bytes(body)
    os.replace(temp, spool / name)
    return spool / name


def _wait(predicate: Callable[[], bool], what: str, daemon: DaemonProcess) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{daemon.log()}")
        time.sleep(0.05)


def _events(daemon: DaemonProcess) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = daemon.request("read", limit=10_000)["result"]["events"]
    return result


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def daemon() -> Iterator[DaemonProcess]:
    """A daemon with its spool watcher on."""
    with running_daemon() as d:
        _wait(lambda: (d.data_dir / "spool" / REJECTED_DIR).is_dir(), "the spool", d)
        yield d


def _append_many(daemon: DaemonProcess, count: int) -> None:
    with daemon.connect() as conn:
        for start in range(0, count, 1000):
            batch = [
                {"stream": "s:acked", "type": "T", "data": {"i": i}}
                for i in range(start, start + 1000)
            ]
            assert conn.request("append_batch", events=batch)["ok"]


def test_a_symlink_to_the_database_never_overwrites_it(daemon: DaemonProcess) -> None:
    """A link named *.ndjson pointing at atlasd.db, and an impostor rejected/ link, leave
    every acknowledged event in place; the link is set aside, never followed."""
    _append_many(daemon, 20_000)
    spool = daemon.data_dir / "spool"
    db = daemon.data_dir / "atlasd.db"
    (spool / "atlasd.db").symlink_to(db)  # not *.ndjson: ignored, never opened
    os.symlink(db, spool / "0-evil.ndjson")
    _wait(lambda: (spool / REJECTED_DIR / "0-evil.ndjson").is_symlink(), "the rejection", daemon)
    reason = (spool / REJECTED_DIR / "0-evil.ndjson.reason").read_text()
    assert "symbolic link" in reason
    assert daemon.request("status")["result"]["events"] == 20_000
    assert db.stat().st_size > 1_000_000


def test_a_rejected_link_to_a_trap_never_overwrites_the_database(daemon: DaemonProcess) -> None:
    """A member swaps rejected/ for a link to their own directory holding a link, named
    like the daemon's reason temp file, to atlasd.db; a bad file then gets rejected into
    the daemon's private rejected/ and the database keeps its 20,000 events."""
    _append_many(daemon, 20_000)
    spool = daemon.data_dir / "spool"
    db = daemon.data_dir / "atlasd.db"
    trap = daemon.root / "trap"
    trap.mkdir()
    os.symlink(db, trap / ".tmp-x.ndjson.reason.part")
    os.symlink(db, trap / "x.ndjson.reason")
    (spool / REJECTED_DIR).rename(daemon.root / "moved-away")
    os.symlink(trap, spool / REJECTED_DIR)
    _drop(spool, "x.ndjson", b"not json\n")
    _wait(lambda: not (spool / "x.ndjson").exists(), "the rejection", daemon)
    assert (daemon.root / "moved-away" / "x.ndjson.reason").read_text().startswith("bad_request")
    assert db.read_bytes()[:16] == b"SQLite format 3\x00"
    daemon.stop()
    daemon.start()
    assert daemon.request("status")["result"]["events"] == 20_000


def test_an_impostor_rejected_dir_is_set_aside_before_the_daemon_uses_it(tmp_path: Path) -> None:
    """A member who makes spool/rejected a link to the data dir before the daemon starts
    gets it renamed away; the rejection of a file named atlasd.db lands in a private dir."""
    with running_daemon(keep=True) as d:
        spool = d.data_dir / "spool"
        _wait(lambda: (spool / REJECTED_DIR).is_dir(), "the spool", d)
        _append_many(d, 1000)
    d.proc = None
    spool = d.data_dir / "spool"
    (spool / REJECTED_DIR).rmdir()
    os.symlink(d.data_dir, spool / REJECTED_DIR)
    _drop(spool, "atlasd.db", b"not json\n")  # not *.ndjson: never touched
    _drop(spool, "x.ndjson", b"not json\n")
    from tests.support.daemon import start_daemon

    again = start_daemon(d.root)
    try:
        _wait(lambda: (spool / REJECTED_DIR / "x.ndjson.reason").exists(), "the rejection", again)
        rejected = spool / REJECTED_DIR
        assert rejected.is_dir()
        assert not rejected.is_symlink()
        assert rejected.stat().st_uid == os.geteuid()
        assert oct(rejected.stat().st_mode & 0o777) == "0o700"
        assert again.request("status")["result"]["events"] == 1000
        assert "spool_rejected_dir_replaced" in again.log()
    finally:
        assert again.stop() == 0
        import shutil

        shutil.rmtree(d.root, ignore_errors=True)


def test_fifos_sockets_directories_and_hard_links_are_rejected_without_a_hang(
    daemon: DaemonProcess,
) -> None:
    """Non-regular entries are rejected once each, the daemon keeps ingesting good files
    and answering, and it still stops promptly (a FIFO never blocks it)."""
    spool = daemon.data_dir / "spool"
    os.mkfifo(spool / "1-fifo.ndjson")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(os.fspath(spool / "2-sock.ndjson"))
    (spool / "3-dir.ndjson").mkdir()
    target = daemon.root / "outside.txt"
    target.write_bytes(_line(1) + b"\n")
    os.link(target, spool / "4-link.ndjson")
    _drop(spool, "5-good.ndjson", _line(5, event_id="0195f000-0000-7000-8000-000000000005") + b"\n")
    try:
        _wait(lambda: len(_events(daemon)) == 1, "the good file", daemon)
        rejected = spool / REJECTED_DIR
        _wait(lambda: len(list(rejected.glob("*.reason"))) == 4, "four rejections", daemon)
        reasons = {p.name: p.read_text() for p in rejected.glob("*.reason")}
        assert "FIFO" in reasons["1-fifo.ndjson.reason"]
        assert "socket" in reasons["2-sock.ndjson.reason"]
        assert "directory" in reasons["3-dir.ndjson.reason"]
        assert "hard links" in reasons["4-link.ndjson.reason"]
        time.sleep(5)  # two more rescans: nothing is retried or logged again
        assert daemon.log().count("spool_rejected") == 4
    finally:
        listener.close()
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 10


def test_a_sparse_gigabyte_without_newline_is_rejected_in_bounded_memory(
    daemon: DaemonProcess,
) -> None:
    """A 1 GiB sparse file with no newline is rejected after one line's worth of reading;
    the daemon's RSS barely moves and a good file dropped after it is still ingested."""
    spool = daemon.data_dir / "spool"
    before = _rss_kib(daemon.pid)
    temp = spool / ".tmp-huge.part"
    with open(temp, "wb") as f:
        f.truncate(1 << 30)
    os.replace(temp, spool / "1-huge.ndjson")
    _drop(spool, "2-good.ndjson", _line(2) + b"\n")
    _wait(lambda: len(_events(daemon)) == 1, "the good file", daemon)
    reason = (spool / REJECTED_DIR / "1-huge.ndjson.reason").read_text()
    assert "longer than" in reason
    assert _rss_kib(daemon.pid) - before < 50 * 1024


def test_lines_that_would_crash_the_decoder_or_the_store_reject_only_their_file(
    daemon: DaemonProcess,
) -> None:
    """Deep nesting, an integer past 64 bits, invalid UTF-8: each file is rejected once
    with its reason, no traceback is logged, and the daemon keeps ingesting."""
    spool = daemon.data_dir / "spool"
    _drop(spool, "1-deep.ndjson", b'{"stream":"s","type":"T","data":{"a":' + b"[" * 100_000 + b"\n")
    big = json.dumps({"stream": "s", "type": "T", "data": {}, "expected_version": 2**63})
    _drop(spool, "2-big.ndjson", big.encode() + b"\n")
    _drop(spool, "3-utf8.ndjson", b'{"stream":"s","type":"\xff","data":{}}\n')
    _drop(spool, "4-good.ndjson", _line(4) + b"\n")
    _wait(lambda: len(_events(daemon)) == 1, "the good file", daemon)
    rejected = spool / REJECTED_DIR
    _wait(lambda: len(list(rejected.glob("*.reason"))) == 3, "three rejections", daemon)
    assert "nested too deeply" in (rejected / "1-deep.ndjson.reason").read_text()
    assert "Traceback" not in daemon.log()
    assert daemon.request("ping")["ok"]


def test_two_files_with_the_same_content_are_two_sets_of_events(daemon: DaemonProcess) -> None:
    """Lines without event_id in two files with identical bytes give two sets of events."""
    spool = daemon.data_dir / "spool"
    body = _line(1) + b"\n" + _line(2) + b"\n"
    _drop(spool, "a.ndjson", body)
    _drop(spool, "b.ndjson", body)
    _wait(lambda: len(_events(daemon)) == 4, "both files", daemon)
    assert len({e["event_id"] for e in _events(daemon)}) == 4


def test_a_file_still_being_written_waits_and_never_holds_socket_appends(
    daemon: DaemonProcess,
) -> None:
    """A *.ndjson a writer keeps growing is not ingested while it changes; appends on the
    socket are answered meanwhile; once it stops changing it is ingested whole."""
    spool = daemon.data_dir / "spool"
    path = spool / "growing.ndjson"
    with open(path, "wb") as f:
        for i in range(40):
            f.write(_line(i) + b"\n")
            f.flush()
            with daemon.connect(timeout=2.0) as conn:
                started = time.monotonic()
                assert conn.request("append", stream="s:live", type="T", data={"i": i})["ok"]
                assert time.monotonic() - started < 1.0
            time.sleep(0.1)
    _wait(lambda: not path.exists(), "the file to be ingested", daemon)
    spooled = [e for e in _events(daemon) if e["stream"] == "s:spool"]
    assert [e["data"]["n"] for e in spooled] == list(range(40))
    assert not list((spool / REJECTED_DIR).iterdir())
