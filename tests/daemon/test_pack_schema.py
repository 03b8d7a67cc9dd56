"""Pack schemas at every local entry point of a real daemon: socket, spool, start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from atlasd.client.spool import write_spool_file
from atlasd.events import NewEvent
from tests.support.daemon import clean_env, running_daemon, start_daemon

WAIT_S = 20.0

TASK = {
    "build_id": "b1",
    "task_id": "t1",
    "title": "Form",
    "agent": "coder",
    "status": "pending",
    "dependencies": [],
    "phase": 1,
}


def wait_for_spool_dir(spool: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not spool.is_dir():
        assert time.monotonic() < deadline, "the daemon made no spool dir"
        time.sleep(0.05)


def test_socket_appends_of_pack_types_are_checked() -> None:
    """append and append_batch refuse data that breaks a pack schema with invalid_value
    naming the path, append nothing, and keep serving; unknown types pass unchecked."""
    with running_daemon() as daemon, daemon.connect() as conn:
        missing = {k: v for k, v in TASK.items() if k != "task_id"}
        answer = conn.request("append", stream="build:b1", type="TaskLogged", data=missing)
        assert answer["error"]["code"] == "invalid_value"
        assert answer["error"]["message"] == "data.task_id: required"
        answer = conn.request(
            "append_batch",
            events=[
                {"stream": "build:b1", "type": "TaskLogged", "data": TASK},
                {"stream": "asset:a", "type": "AssetSaved", "data": {"asset_id": "a"}},
            ],
        )
        assert answer["error"]["message"] == "events[1].data.name: required"
        assert conn.request("status")["result"]["last_seq"] == 0
        ok = conn.request("append", stream="x", type="NotAPackType", data={"any": 1})
        assert ok["ok"], ok
        ok = conn.request("append", stream="build:b1", type="TaskLogged", data=TASK)
        assert ok["ok"], ok
        rows = conn.request("query", view="tasks")["result"]["rows"]
        assert [r["task_id"] for r in rows] == ["t1"]


def test_a_spool_file_with_an_invalid_pack_event_is_rejected_whole() -> None:
    """A spooled event that breaks its schema rejects its file (with the reason), and
    nothing of the file is appended."""
    with running_daemon() as daemon:
        spool = daemon.data_dir / "spool"
        wait_for_spool_dir(spool)
        lines = [
            {"stream": "x", "type": "Other", "data": {}, "event_id": None},
            {
                "stream": "deployment:d",
                "type": "DeploymentRecorded",
                "data": {"deployment_id": "d"},
            },
        ]
        body = "".join(
            json.dumps({k: v for k, v in line.items() if v is not None}) + "\n" for line in lines
        )
        temp = spool / ".tmp-bad.part"
        temp.write_text(body)
        os.replace(temp, spool / "bad.ndjson")
        reason = spool / "rejected" / "bad.ndjson.reason"
        deadline = time.monotonic() + WAIT_S
        while not reason.exists():
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.05)
        assert "events[1].data.site_id: required" in reason.read_text()
        assert daemon.request("status")["result"]["last_seq"] == 0


def test_a_valid_spool_file_of_pack_events_is_projected() -> None:
    """Pack events spooled by the client are appended and projected at ingestion."""
    with running_daemon() as daemon:
        wait_for_spool_dir(daemon.data_dir / "spool")
        write_spool_file(
            daemon.data_dir / "spool",
            [
                NewEvent(
                    stream="agent_job:j1",
                    type="AgentJobStarted",
                    data={"job_id": "j1", "agent": "coder"},
                    event_id="01900200-0000-7000-8000-000000000001",
                )
            ],
        )
        deadline = time.monotonic() + WAIT_S
        while not daemon.request("query", view="agent_jobs")["result"]["rows"]:
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.05)
        row = daemon.request("query", view="agent_jobs")["result"]["rows"][0]
        assert (row["job_id"], row["status"]) == ("j1", "running")


def test_serve_refuses_to_start_with_a_bad_operator_pack(tmp_path: Path) -> None:
    """A bad file in the packs dir stops start-up with FILE:LINE: reason and exit 2."""
    packs = tmp_path / "packs"
    packs.mkdir()
    bad = packs / "mine.json"
    bad.write_text('{\n  "pack": "mine",\n  "views": {},\n  "events": {},\n  "extra": 1\n}\n')
    result = subprocess.run(
        [sys.executable, "-m", "atlasd", "serve", "--socket", str(tmp_path / "s.sock"),
         "--data-dir", str(tmp_path / "data"), "--packs-dir", str(packs)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{bad}:5: unknown member 'extra'" in result.stderr
    assert not (tmp_path / "data").exists()


def test_the_daemon_serves_operator_pack_views_from_its_packs_dir(tmp_path: Path) -> None:
    """ATLASD_PACKS_DIR's packs are checked on the socket and projected into their views."""
    packs = tmp_path / "packs"
    packs.mkdir()
    pack = json.loads(
        (Path(__file__).resolve().parents[1] / "packs" / "fixtures" / "notes.json").read_text()
    )
    (packs / "notes.json").write_text(json.dumps(pack))
    daemon = start_daemon(env={"ATLASD_PACKS_DIR": str(packs)})
    try:
        with daemon.connect() as conn:
            bad = conn.request("append", stream="note:n", type="NoteSaved", data={"note_id": "n"})
            assert bad["error"]["message"] == "data.book_id: required"
            data = {"note_id": "n", "book_id": "b", "text": "hi"}
            assert conn.request("append", stream="note:n", type="NoteSaved", data=data)["ok"]
            rows = conn.request("query", view="notes", filter={"book_id": "b"})["result"]["rows"]
            assert [r["text"] for r in rows] == ["hi"]
    finally:
        assert daemon.stop() == 0
