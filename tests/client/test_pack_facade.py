"""The facade's pack methods: the same shape as the pack files, and end to end."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from atlasd.client import AsyncAtlas, Atlas, Client
from atlasd.client.pack_facade import WRITE_METHODS, AsyncPackMethods, PackMethods
from atlasd.errors import InvalidValue
from atlasd.events import NewEvent
from atlasd.packs.loader import BUILTIN_PACKS
from atlasd.packs.registry import builtin_packs
from tests.support.daemon import DaemonProcess


def test_every_builtin_pack_type_has_a_write_method() -> None:
    """Each event type of the built-in packs but atlas (which has its own methods) is
    recorded by exactly one facade method."""
    packs = builtin_packs()
    types = {t for p in packs.packs if p.name != BUILTIN_PACKS[0] for t in p.events}
    assert sorted(WRITE_METHODS.values()) == sorted(types)


@pytest.mark.parametrize("cls", [PackMethods, AsyncPackMethods])
@pytest.mark.parametrize(("method", "event_type"), sorted(WRITE_METHODS.items()))
def test_write_methods_take_exactly_the_pack_fields(
    cls: type, method: str, event_type: str
) -> None:
    """Parameters are the type's fields: required ones first without defaults, in the
    pack's order, then the optional ones defaulting to None."""
    fields = builtin_packs().events[event_type].fields
    required = [n for n, f in fields.items() if f.required]
    optional = [n for n, f in fields.items() if not f.required]
    params = list(inspect.signature(getattr(cls, method)).parameters.values())[1:]
    assert [p.name for p in params] == required + optional
    assert all(p.default is inspect.Parameter.empty for p in params[: len(required)])
    assert all(p.default is None for p in params[len(required) :])
    assert inspect.iscoroutinefunction(getattr(cls, method)) == (cls is AsyncPackMethods)


def test_pack_methods_record_and_read_through_a_daemon(daemon: DaemonProcess) -> None:
    """Writes land in the pack views, reads answer from them."""
    with Atlas(socket_path=daemon.socket, data_dir=daemon.data_dir) as atlas:
        atlas.save_thread("th1", "user-1", "Trip", metadata={"k": 1})
        atlas.save_message("m1", "th1", "user", "Where to?")
        atlas.save_message("m2", "th1", "assistant", {"text": "Lisbon"}, type="v2")
        atlas.save_workflow_run("r1", "triage", "running", {"step": 1})
        atlas.record_eval("e1", "helper", "tone", 0.5, run_id="r1")
        atlas.record_trace("tr1", "s1", "generate", 10, 20)
        atlas.save_workflow("w1", "Deploy", {"steps": []})
        atlas.save_workflow_execution("x1", "w1", "running", {})
        atlas.save_asset("a1", "logo", "image", ["brand"])
        atlas.asset_downloaded("a1")
        atlas.record_deployment("d1", "site", "building", url="https://one.example")
        atlas.record_deployment("d2", "site", "building", commit="abc")
        atlas.set_deployment_status("d2", "ready")
        atlas.start_agent_job("j1", "coder", project_id="p1")
        atlas.finish_agent_job("j1", "completed", result={"ok": True})

        assert [m["message_id"] for m in atlas.messages("th1")] == ["m1", "m2"]
        thread = atlas.thread("th1")
        assert thread is not None
        assert thread["messages"] == 2
        assert atlas.thread("nope") is None
        assert [r["run_id"] for r in atlas.workflow_runs("triage")] == ["r1"]
        assert [e["score"] for e in atlas.evals(run_id="r1")] == [0.5]
        assert [s["span_id"] for s in atlas.traces("tr1")] == ["s1"]
        assert atlas.workflows()[0]["executions"] == 1
        assert [x["execution_id"] for x in atlas.workflow_executions("w1")] == ["x1"]
        assert atlas.assets(tags=["brand"])[0]["downloads"] == 1
        latest = atlas.latest_deployment("site")
        assert latest is not None
        assert (latest["deployment_id"], latest["status"]) == ("d2", "ready")
        assert atlas.latest_deployment("other") is None
        job = atlas.agent_job("j1")
        assert job is not None
        assert (job["status"], job["result"]) == ("completed", {"ok": True})
        atlas.delete_thread("th1")
        assert atlas.messages("th1") == []


async def test_async_pack_methods_record_and_read(daemon: DaemonProcess) -> None:
    """The async facade has the same methods, awaited."""
    async with AsyncAtlas(socket_path=daemon.socket, data_dir=daemon.data_dir) as atlas:
        await atlas.start_agent_job("j2", "reviewer")
        await atlas.record_deployment("d9", "s9", "queued")
        jobs = await atlas.agent_jobs(agent="reviewer")
        assert [j["job_id"] for j in jobs] == ["j2"]
        latest = await atlas.latest_deployment("s9")
        assert latest is not None
        assert latest["status"] == "queued"


def test_bad_arguments_are_refused_before_anything_is_sent_or_spooled(
    daemon: DaemonProcess,
) -> None:
    """A value the pack schema refuses raises InvalidValue in the client, with the daemon
    up or down; nothing is appended or spooled."""
    with Atlas(socket_path=daemon.socket, data_dir=daemon.data_dir) as atlas:
        with pytest.raises(
            InvalidValue, match=r"^data\.status: expected one of completed, failed$"
        ):
            atlas.finish_agent_job("j1", "done")
        assert atlas.client.status().last_seq == 0
        assert daemon.stop() == 0
        with pytest.raises(InvalidValue, match=r"^data\.score: expected number$"):
            atlas.record_eval("e1", "a", "m", "high")  # type: ignore[arg-type]
    spool = Path(daemon.data_dir) / "spool"
    assert not list(spool.glob("*.ndjson"))


def test_the_client_checks_pack_schemas_before_spooling(daemon: DaemonProcess) -> None:
    """With the daemon down, a raw append of a pack type that breaks its schema is refused
    with the daemon's message, and a batch names the item; valid events still spool."""
    assert daemon.stop() == 0
    with Client(daemon.socket, data_dir=daemon.data_dir) as client:
        with pytest.raises(InvalidValue, match=r"^data\.job_id: required$"):
            client.append("agent_job:x", "AgentJobStarted", {"agent": "coder"})
        started = NewEvent(stream="agent_job:x", type="AgentJobStarted", data={"job_id": "x"})
        with pytest.raises(InvalidValue, match=r"^events\[0\]\.data\.agent: required$"):
            client.append_batch([started])
        outcome = client.append("agent_job:x", "AgentJobStarted", {"job_id": "x", "agent": "a"})
        assert outcome.spooled
    spool = Path(daemon.data_dir) / "spool"
    assert len(list(spool.glob("*.ndjson"))) == 1
