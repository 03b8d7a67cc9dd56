"""``atlasd query`` as a user runs it: pages, --all, --since, formats, the partial notice."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasd.client import AsyncAtlas, Atlas, Client
from atlasd.events import NewEvent
from tests.support.daemon import DaemonProcess, clean_env, running_daemon

ATLASD = str(Path(sys.executable).parent / "atlasd")
COUNT = 2500


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    now = time.time_ns() // 1_000_000
    with running_daemon() as d:
        with Client(d.socket, spool=False) as client:
            client.append_batch(
                [
                    NewEvent(
                        stream=f"learning:{i}",
                        type="LearningRecorded",
                        data={"learning_id": f"l{i:05d}", "insight": "x", "category": "c"},
                        # the first 100 happened 3 days ago, the others within the hour
                        occurred_at=now - 3 * 86_400_000 if i < 100 else now - 60_000,
                    )
                    for i in range(COUNT)
                ]
            )
        yield d


def atlasd(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATLASD, *args],
        capture_output=True,
        text=True,
        env=clean_env({"ATLASD_SOCKET": str(daemon.socket)}),
        timeout=60,
    )


def test_a_partial_answer_says_so_on_stderr(daemon: DaemonProcess) -> None:
    """Without --all, the first page is printed and stderr says how to get the rest."""
    out = atlasd(daemon, "query", "learnings", "--format", "ndjson", "--limit", "10")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 10
    assert "more rows follow" in out.stderr
    assert "--after " in out.stderr
    cursor = out.stderr.split("--after ")[1].split()[0]
    nxt = atlasd(
        daemon, "query", "learnings", "--format", "ndjson", "--limit", "10", "--after", cursor
    )
    assert json.loads(nxt.stdout.splitlines()[0])["learning_id"] == "l00010"


def test_all_follows_every_page(daemon: DaemonProcess) -> None:
    """--all prints every row once (2,500 rows over pages of 1,000) and no notice."""
    out = atlasd(daemon, "query", "learnings", "--all", "--format", "ndjson")
    assert out.returncode == 0, out.stderr
    ids = [json.loads(line)["learning_id"] for line in out.stdout.splitlines()]
    assert ids == [f"l{i:05d}" for i in range(COUNT)]
    assert out.stderr == ""


def test_since_takes_a_duration(daemon: DaemonProcess) -> None:
    """--since 2h keeps the rows that happened within the last two hours."""
    out = atlasd(daemon, "query", "learnings", "--all", "--since", "2h", "--json")
    rows = json.loads(out.stdout)
    assert len(rows) == COUNT - 100
    old = atlasd(daemon, "query", "learnings", "--all", "--until", "1d", "--format", "json")
    assert [row["learning_id"] for row in json.loads(old.stdout)] == [
        f"l{i:05d}" for i in range(100)
    ]


def test_csv_has_a_header_and_one_line_per_row(daemon: DaemonProcess) -> None:
    """--format csv writes the columns once, then one record per row."""
    out = atlasd(daemon, "query", "learnings", "--limit", "3", "--format", "csv")
    records = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["learning_id"] for r in records] == ["l00000", "l00001", "l00002"]
    assert records[0]["build_id"] == ""


def test_a_bad_since_is_a_usage_error(daemon: DaemonProcess) -> None:
    """An unreadable --since exits 2 with the accepted forms."""
    out = atlasd(daemon, "query", "learnings", "--since", "yesterday-ish")
    assert out.returncode == 2
    assert "expected a duration" in out.stderr


def test_the_facade_reads_every_page_or_stops_at_limit(daemon: DaemonProcess) -> None:
    """Atlas.learnings() returns all 2,500 rows; limit and order cut and sort them."""
    with Atlas(socket_path=daemon.socket) as atlas:
        assert len(atlas.learnings()) == COUNT
        newest = atlas.learnings(limit=3, order="desc")
        assert [row.learning_id for row in newest] == ["l02499", "l02498", "l02497"]
        assert len(atlas.learnings(category="c", limit=1500)) == 1500


async def test_the_async_facade_reads_every_page(daemon: DaemonProcess) -> None:
    """AsyncAtlas.learnings() follows every page too."""
    async with AsyncAtlas(socket_path=daemon.socket) as atlas:
        assert len(await atlas.learnings()) == COUNT
        assert len(await atlas.learnings(limit=1001)) == 1001
        assert await atlas.executions() == []


def test_tail_prints_any_range_and_more_than_one_page(daemon: DaemonProcess) -> None:
    """tail -n beyond the largest read page, and --from-seq/--to-seq, print exactly the range."""
    everything = atlasd(daemon, "tail", "-n", "12000", "--json")
    assert everything.returncode == 0, everything.stderr
    seqs = [json.loads(line)["seq"] for line in everything.stdout.splitlines()]
    assert seqs == list(range(1, COUNT + 1))
    last = atlasd(daemon, "tail", "-n", "2400", "--json")
    seqs = [json.loads(line)["seq"] for line in last.stdout.splitlines()]
    assert seqs == list(range(COUNT - 2400 + 1, COUNT + 1))
    middle = atlasd(daemon, "tail", "--from-seq", "100", "--to-seq", "2200", "--json")
    seqs = [json.loads(line)["seq"] for line in middle.stdout.splitlines()]
    assert seqs == list(range(101, 2201))
    bad = atlasd(daemon, "tail", "--to-seq", "5", "-f")
    assert bad.returncode == 2


def test_client_query_is_never_cut_short(daemon: DaemonProcess) -> None:
    """Client.query without limit returns every row (2,500 > one page); with one, that many."""
    with Client(daemon.socket, spool=False) as client:
        rows = client.query("learnings")
        assert [row["learning_id"] for row in rows] == [f"l{i:05d}" for i in range(COUNT)]
        assert len(client.query("learnings", limit=1200, order="desc")) == 1200
