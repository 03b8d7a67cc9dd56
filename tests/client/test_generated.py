"""The blocking client modules are generated from the async ones and kept fresh."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest

import atlasd.client as client
from scripts import generate_sync

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("source", "target"), sorted(generate_sync.MODULES.items()))
def test_each_generated_module_is_what_its_async_source_makes_now(source: str, target: str) -> None:
    """Editing an async source without `make generate` fails here (and in `make lint`)."""
    assert (ROOT / target).read_text() == generate_sync.generate(source, target)


@pytest.mark.parametrize(("source", "target"), sorted(generate_sync.MODULES.items()))
def test_each_generated_module_names_its_source_and_how_to_remake_it(
    source: str, target: str
) -> None:
    """The first lines say the file is generated, from what, and by which make target."""
    head = (ROOT / target).read_text().splitlines()[:2]
    assert head[0] == f"# Generated from {source} by scripts/generate_sync.py: do not edit."
    assert "make generate" in head[1]


def test_the_check_fails_on_a_stale_module_and_generate_freshens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--check`` exits 1 naming the stale module and writes nothing; a plain run rewrites it."""
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "atlasd", tmp_path / "atlasd", ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.setattr(generate_sync, "ROOT", tmp_path)
    assert generate_sync.main(["--check"]) == 0

    source = tmp_path / "atlasd/client/async_client.py"
    source.write_text(
        source.read_text().replace("async def ping(self)", "async def ping_now(self)")
    )
    target = tmp_path / "atlasd/client/sync_client.py"
    before = target.read_text()
    assert generate_sync.main(["--check"]) == 1
    assert "atlasd/client/sync_client.py is stale" in capsys.readouterr().err
    assert target.read_text() == before

    assert generate_sync.main([]) == 0
    assert "    def ping_now(self) -> Pong:\n" in target.read_text()
    assert generate_sync.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"),
    [
        (client.AsyncClient, client.Client),
        (client.AsyncSubscription, client.Subscription),
        (client.AsyncWatch, client.WatchStream),
        (client.AsyncAtlas, client.Atlas),
    ],
)
def test_the_blocking_classes_have_the_async_ones_methods_without_await(
    async_cls: type, sync_cls: type
) -> None:
    """Same public methods and signatures; none of the blocking ones is a coroutine."""
    renamed = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
    renamed |= {"__aiter__": "__iter__", "__anext__": "__next__"}

    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            renamed.get(name, name): inspect.signature(value)
            for name, value in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") or name in {*renamed, *renamed.values()}
        }

    async_methods, sync_methods = methods(async_cls), methods(sync_cls)
    assert sorted(sync_methods) == sorted(async_methods)
    for name, value in inspect.getmembers(sync_cls, inspect.isfunction):
        assert not inspect.iscoroutinefunction(value), name
    for name in ("append", "query", "read", "subscribe", "watch"):
        if name in async_methods:
            assert list(sync_methods[name].parameters) == list(async_methods[name].parameters)
