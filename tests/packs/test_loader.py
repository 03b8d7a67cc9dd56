"""Pack files: the built-in ones load, the docs' example loads, bad ones name file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from atlasd.packs.loader import BUILTIN_PACKS, PackError, load_pack_dir, load_pack_text
from atlasd.packs.registry import PackSet, builtin_packs, load_packs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "views.md"

GOOD = {
    "pack": "notes",
    "views": {
        "notes": {
            "key": ["note_id"],
            "columns": {
                "note_id": "string",
                "text": "string",
                "labels": "string_list",
                "created_at": "time",
            },
            "time": "created_at",
        }
    },
    "events": {
        "NoteSaved": {
            "stream": "note:{note_id}",
            "fields": {
                "note_id": {"type": "id", "required": True},
                "text": {"type": "string", "required": True},
            },
            "needs": ["note_id"],
            "apply": [
                {
                    "op": "upsert",
                    "view": "notes",
                    "key": {"note_id": "note_id"},
                    "set": {"text": "text"},
                    "set_once": {"created_at": "$time"},
                }
            ],
        }
    },
}


def write(directory: Path, name: str, value: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(value, indent=2) if not isinstance(value, str) else value)
    return path


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_builtin_packs_load_with_the_contract_views() -> None:
    """The six built-in packs load and define the contract's sixteen views, in order."""
    packs = builtin_packs()
    assert [p.name for p in packs.packs] == list(BUILTIN_PACKS)
    assert packs.view_names == (
        "builds", "tasks", "executions", "patterns", "learnings",
        "threads", "messages", "workflow_runs", "traces", "evals",
        "workflows", "workflow_executions", "assets", "deployments", "agent_jobs",
    )  # fmt: skip
    assert len(packs.event_types) == 22


def test_the_example_pack_in_the_docs_loads() -> None:
    """The complete example in docs/views.md is a valid pack."""
    text = DOCS.read_text()
    example = re.search(r"```json\n(\{\n  \"pack\": \"assets\".*?)\n```", text, re.S)
    assert example is not None
    pack = load_pack_text(example.group(1), "docs/views.md")
    assert list(pack.events) == ["AssetSaved", "AssetDownloaded", "AssetDeleted"]


def test_an_operator_pack_loads_after_the_builtin_ones(tmp_path: Path) -> None:
    """A good file in the packs dir adds its views and types to the built-in ones."""
    write(tmp_path, "notes.json", GOOD)
    packs = load_packs(tmp_path)
    assert packs.view_names[-1] == "notes"
    assert "NoteSaved" in packs.event_types
    assert load_packs(tmp_path / "missing") is builtin_packs()


@pytest.mark.parametrize(
    ("mutate", "needle", "reason"),
    [
        (lambda p: p["views"]["notes"].update(colour="red"), '"colour"', "unknown member 'colour'"),
        (
            lambda p: p["views"]["notes"]["columns"].update(text="text"),
            '"text": "text"',
            "type 'text' is not one of",
        ),
        (lambda p: p["views"]["notes"].update(time="text"), '"time": "text"', "type time"),
        (
            lambda p: p["events"]["NoteSaved"].update(needs=[]),
            '"note_id": "note_id"',
            "must be listed in needs",
        ),
        (
            lambda p: p["events"]["NoteSaved"]["apply"][0]["set"].update(text="body"),
            '"text": "body"',
            "source 'body' is not a field",
        ),
        (
            lambda p: p["events"]["NoteSaved"]["fields"]["text"].update(type="str"),
            '"type": "str"',
            "type 'str' is not one of",
        ),
        (
            lambda p: p["events"]["NoteSaved"]["apply"][0].update(op="merge"),
            '"op": "merge"',
            "op 'merge' is not upsert",
        ),
        (
            lambda p: p["events"]["NoteSaved"]["apply"][0]["set"].update(note_id="text"),
            '"note_id": "text"',
            "set: note_id is a key",
        ),
    ],
)
def test_a_bad_operator_pack_names_file_and_line(
    tmp_path: Path, mutate: object, needle: str, reason: str
) -> None:
    """Each kind of mistake stops loading with FILE:LINE of the offending member."""
    pack = json.loads(json.dumps(GOOD))
    mutate(pack)  # type: ignore[operator]
    path = write(tmp_path, "notes.json", pack)
    with pytest.raises(PackError) as caught:
        load_pack_dir(tmp_path)
    assert caught.value.origin == str(path)
    assert reason in caught.value.reason
    assert caught.value.line == line_of(path, needle)
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: ")


def test_json_syntax_errors_name_the_line(tmp_path: Path) -> None:
    """A file that is not JSON is refused at the line the parser stopped on."""
    write(tmp_path, "bad.json", '{\n  "pack": "x",\n  "views": {,\n}\n')
    with pytest.raises(PackError, match=r"bad\.json:3: not JSON"):
        load_pack_dir(tmp_path)
    write(tmp_path, "bad.json", '{"pack": "x", "pack": "y"}')
    with pytest.raises(PackError, match="repeated"):
        load_pack_dir(tmp_path)


def test_names_clash_with_builtin_packs(tmp_path: Path) -> None:
    """An operator pack cannot redefine a built-in view or event type."""
    pack = json.loads(json.dumps(GOOD))
    pack["views"]["builds"] = pack["views"].pop("notes")
    pack["events"]["NoteSaved"]["apply"][0]["view"] = "builds"
    write(tmp_path, "notes.json", pack)
    with pytest.raises(PackError, match=r"view builds is also defined by builtin:atlas\.json"):
        load_packs(tmp_path)
    pack = json.loads(json.dumps(GOOD))
    pack["events"]["TaskLogged"] = pack["events"].pop("NoteSaved")
    write(tmp_path, "notes.json", pack)
    with pytest.raises(PackError, match="event type TaskLogged is also defined"):
        load_packs(tmp_path)


def test_counted_rows_need_their_counting_row_first(tmp_path: Path) -> None:
    """A count over rows whose events do not upsert the counting row first is refused,
    and so is removing a counting row without removing the rows it counts."""
    mastra = json.loads(
        (Path(__file__).parents[2] / "atlasd/packs/builtin/mastra.json").read_text()
    )
    mastra["pack"] = "chat"
    renamed = {}
    for name, view in mastra["views"].items():
        renamed[f"chat_{name}"] = view
        for count in view.get("counts", {}).values():
            count["view"] = f"chat_{count['view']}"
    mastra["views"] = renamed
    mastra["events"] = {f"Chat{t}": e for t, e in mastra["events"].items()}
    for event in mastra["events"].values():
        for action in event["apply"]:
            action["view"] = f"chat_{action['view']}"
    good = json.loads(json.dumps(mastra))
    write(tmp_path, "chat.json", good)
    assert "chat_threads" in load_packs(tmp_path).views
    del mastra["events"]["ChatMessageSaved"]["apply"][0]  # no thread upsert first
    path = write(tmp_path, "chat.json", mastra)
    with pytest.raises(PackError, match="counted by chat_threads: upsert the chat_threads row"):
        load_packs(tmp_path)
    del good["events"]["ChatThreadDeleted"]["apply"][0]  # no remove_matching of messages
    write(tmp_path, "chat.json", good)
    with pytest.raises(PackError, match="remove_matching them in an earlier action"):
        load_packs(tmp_path)
    assert path.exists()


def test_content_version_ignores_formatting_but_not_content() -> None:
    """The version hashes the parsed definition: whitespace does not change it."""
    compact = load_pack_text(json.dumps(GOOD), "a")
    spaced = load_pack_text(json.dumps(GOOD, indent=4), "b")
    assert compact.version == spaced.version
    changed = json.loads(json.dumps(GOOD))
    changed["views"]["notes"]["indexes"] = [["text"]]
    assert load_pack_text(json.dumps(changed), "c").version != compact.version
    assert isinstance(PackSet([compact]).view_version("notes"), int)


def test_default_packs_dir_follows_xdg_and_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """ATLASD_PACKS_DIR wins; else /etc/atlasd/packs as root; else the XDG config dir."""
    import os

    from atlasd.config import resolve_config
    from atlasd.packs.registry import default_packs_dir

    assert default_packs_dir({"ATLASD_PACKS_DIR": "/p"}) == Path("/p")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_packs_dir({"XDG_CONFIG_HOME": "/xdg"}) == Path("/xdg/atlasd/packs")
    assert default_packs_dir({"HOME": "/home/u"}) == Path("/home/u/.config/atlasd/packs")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_packs_dir({}) == Path("/etc/atlasd/packs")
    config = resolve_config({"packs_dir": "/flag"}, env={"ATLASD_PACKS_DIR": "/env"})
    assert config.packs_dir == Path("/flag")
    assert resolve_config({}, env={"ATLASD_PACKS_DIR": "/env"}).packs_dir == Path("/env")


def test_query_help_lists_every_view_with_its_columns(tmp_path: Path) -> None:
    """`atlasd query --help` names each view of the built-in and operator packs with its
    key and columns."""
    import subprocess
    import sys

    from tests.support.daemon import clean_env

    write(tmp_path, "notes.json", GOOD)
    done = subprocess.run(
        [sys.executable, "-m", "atlasd", "query", "--help"],
        env=clean_env({"ATLASD_PACKS_DIR": str(tmp_path)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for name, view in load_packs(tmp_path).views.items():
        columns = ", ".join(c for c, _ in view.columns if c not in view.key)
        assert f"{view.pack}: {name} ({', '.join(view.key)}; {columns})" in text
