"""subscribe and watch: catch-up then live without gap or duplicate, filters, slow consumers."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from tests.daemon.conftest import NO_SPOOL, event, toml_config
from tests.support.daemon import DaemonProcess, RawConnection, running_daemon


def _append_many(daemon: DaemonProcess, count: int, per_line: int = 1, stream: str = "s") -> None:
    """Pipeline ``count`` events in appends of ``per_line`` events each, reading every answer."""
    with daemon.connect() as conn:
        lines = []
        for start in range(0, count, per_line):
            events = [event(i, stream) for i in range(start, min(count, start + per_line))]
            body = {"op": "append_batch", "events": events}
            lines.append(json.dumps(body).encode() + b"\n")
        conn.send(b"".join(lines))
        for _ in lines:
            assert conn.recv()["ok"]


def _events(conn: RawConnection, count: int) -> list[dict[str, Any]]:
    received = []
    for _ in range(count):
        line = conn.recv()
        assert "event" in line, line
        received.append(line["event"])
    return received


def test_subscribe_acknowledges_then_streams_catch_up_and_live(daemon: DaemonProcess) -> None:
    """The first line is subscribed=true, then stored events after from_seq, then new ones."""
    _append_many(daemon, 5)
    with daemon.connect() as sub:
        sub.send({"op": "subscribe", "id": "s", "from_seq": 2})
        assert sub.recv() == {"id": "s", "ok": True, "result": {"subscribed": True}}
        assert [e["seq"] for e in _events(sub, 3)] == [3, 4, 5]
        _append_many(daemon, 2)
        live = sub.recv()
        assert live["id"] == "s"
        assert live["event"]["seq"] == 6
        assert sub.recv()["event"]["seq"] == 7


def test_subscribe_from_end_sends_only_new_events(daemon: DaemonProcess) -> None:
    """from_seq="end" skips the stored log."""
    _append_many(daemon, 5)
    with daemon.connect() as sub:
        sub.send({"op": "subscribe", "from_seq": "end"})
        assert sub.recv()["ok"]
        _append_many(daemon, 1)
        assert sub.recv()["event"]["seq"] == 6


def test_subscribe_filters_by_stream_and_types(daemon: DaemonProcess) -> None:
    """Only events of the given stream (and types) are sent, in catch-up and live."""
    with daemon.connect() as conn:
        conn.request("append", stream="a", type="X", data={})
        conn.request("append", stream="b", type="X", data={})
        conn.request("append", stream="a", type="Y", data={})
        with daemon.connect() as sub:
            sub.send({"op": "subscribe", "stream": "a", "types": ["Y"]})
            assert sub.recv()["ok"]
            assert [e["seq"] for e in _events(sub, 1)] == [3]
            conn.request("append", stream="b", type="Y", data={})
            conn.request("append", stream="a", type="X", data={})
            conn.request("append", stream="a", type="Y", data={})
            assert sub.recv()["event"]["seq"] == 6


def test_hand_over_under_concurrent_appends_has_no_gap_nor_duplicate(
    daemon: DaemonProcess,
) -> None:
    """Subscribers joining while writers append see every seq exactly once, in order."""
    total = 6000
    writers = [
        threading.Thread(target=_append_many, args=(daemon, total // 3, 7, f"w{n}"))
        for n in range(3)
    ]
    for writer in writers:
        writer.start()
    subscribers = []
    for from_seq in (0, 0, 50):
        conn = daemon.connect()
        conn.send({"op": "subscribe", "from_seq": from_seq})
        assert conn.recv()["ok"]
        subscribers.append((from_seq, conn))
    for writer in writers:
        writer.join()
    for from_seq, conn in subscribers:
        with conn:
            seqs = [e["seq"] for e in _events(conn, total - from_seq)]
        assert seqs == list(range(from_seq + 1, total + 1))


def test_a_subscriber_that_falls_behind_is_told_slow_consumer_and_closed(
    short_dir: Path,
) -> None:
    """Past subscriber_buffer queued events: slow_consumer, then the connection closes,
    after a contiguous prefix of the events; the log names the consumer's pid and uid."""
    config = toml_config(short_dir / "c.toml", subscriber_buffer=50)
    with running_daemon(args=[*NO_SPOOL, "--config", str(config)]) as d, d.connect() as sub:
        sub.send({"op": "subscribe", "id": 9, "from_seq": "end"})
        assert sub.recv()["ok"]
        big = {"pad": "x" * 4000}
        with d.connect() as writer:
            for start in range(0, 3000, 100):
                events = [{"stream": "s", "type": "T", "data": {"i": i, **big}}
                          for i in range(start, start + 100)]  # fmt: skip
                assert writer.request("append_batch", events=events)["ok"]
        seqs = []
        while True:
            line = sub.recv()
            if "event" not in line:
                break
            seqs.append(line["event"]["seq"])
        assert line == {"id": 9, "ok": False, "error": line["error"]}
        assert line["error"]["code"] == "slow_consumer"
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) < 3000
        assert sub.at_eof()
        assert d.request("status")["result"]["subscribers"] == 0
        cut = [ln for ln in d.log().splitlines() if ln.startswith("slow_consumer")]
        assert len(cut) == 1
        assert f"pid={os.getpid()}" in cut[0]
        assert f"uid={os.getuid()}" in cut[0]


def test_the_daemon_reads_nothing_more_after_subscribe(daemon: DaemonProcess) -> None:
    """Requests sent on a subscribed connection are ignored (the stream goes on)."""
    with daemon.connect() as sub:
        sub.send({"op": "subscribe"})
        assert sub.recv()["ok"]
        sub.send({"op": "append", **event(1)})
        _append_many(daemon, 1)
        assert sub.recv()["event"]["seq"] == 1
    assert daemon.request("status")["result"]["last_seq"] == 1


def test_a_subscriber_that_hangs_up_is_dropped(daemon: DaemonProcess) -> None:
    """Closing a subscribed connection unregisters the subscriber."""
    with daemon.connect() as sub:
        sub.send({"op": "subscribe"})
        assert sub.recv()["ok"]
        assert daemon.request("status")["result"]["subscribers"] == 1
    with daemon.connect() as conn:
        for _ in range(500):
            if conn.request("status")["result"]["subscribers"] == 0:
                break
        assert conn.request("status")["result"]["subscribers"] == 0


def _pattern(pattern_id: str, language: str = "py") -> dict[str, Any]:
    return {
        "stream": f"pattern:{pattern_id}",
        "type": "PatternStored",
        "data": {
            "pattern_id": pattern_id,
            "name": pattern_id,
            "description": "d",
            "code": "c",
            "language": language,
            "tags": [],
        },
    }


def test_watch_sends_the_answer_now_and_again_when_it_changes(daemon: DaemonProcess) -> None:
    """watch answers like query, then sends {"id", "rows"} after a change."""
    with daemon.connect() as conn, daemon.connect() as watcher:
        conn.request("append", **_pattern("p1"))
        watcher.send({"op": "watch", "id": "w", "view": "patterns"})
        first = watcher.recv()
        assert first["ok"] is True
        assert [r["pattern_id"] for r in first["result"]["rows"]] == ["p1"]
        conn.request("append", **_pattern("p2"))
        update = watcher.recv()
        assert set(update) == {"id", "rows"}
        assert update["id"] == "w"
        assert [r["pattern_id"] for r in update["rows"]] == ["p1", "p2"]


def test_watch_stays_silent_while_its_answer_is_unchanged(daemon: DaemonProcess) -> None:
    """Commits that leave the watched answer as it was send nothing."""
    with daemon.connect() as conn, daemon.connect() as watcher:
        watcher.send({"op": "watch", "view": "patterns", "filter": {"language": "go"}})
        assert watcher.recv()["result"]["rows"] == []
        conn.request("append", **event(1))  # another view entirely
        conn.request("append", **_pattern("p1", "py"))  # same view, filtered out
        conn.request("append", **_pattern("p2", "go"))
        update = watcher.recv()
        assert [r["pattern_id"] for r in update["rows"]] == ["p2"]


def test_one_commit_gives_at_most_one_watch_update(daemon: DaemonProcess) -> None:
    """A batch of many changes arrives as one update with the final answer."""
    with daemon.connect() as conn, daemon.connect() as watcher:
        watcher.send({"op": "watch", "view": "patterns"})
        assert watcher.recv()["ok"]
        conn.request("append_batch", events=[_pattern(f"p{i}") for i in range(50)])
        conn.request("append", **_pattern("last"))
        first = watcher.recv()
        rows = first["rows"]
        if len(rows) == 50:  # the two commits were not coalesced
            rows = watcher.recv()["rows"]
        assert len(rows) == 51


def test_watch_of_an_unknown_view_fails_like_query(daemon: DaemonProcess) -> None:
    """A watch the query would refuse is a failure line, then the connection closes."""
    with daemon.connect() as watcher:
        watcher.send({"op": "watch", "id": 3, "view": "nope"})
        response = watcher.recv()
        assert response["id"] == 3
        assert response["ok"] is False
        assert watcher.at_eof()
