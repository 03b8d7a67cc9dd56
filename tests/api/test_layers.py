"""Dependencies point one way: lower layers never load the ones above them."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(statement: str) -> set[str]:
    """The atlasd modules a fresh interpreter holds after running ``statement``."""
    listing = "print(' '.join(m for m in sys.modules if m.startswith('atlasd')))"
    code = f"{statement}; import sys; {listing}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_the_daemon_entry_point_does_not_load_the_cli() -> None:
    """`python -m atlasd.daemon` imports the daemon's own command, not the atlasd CLI."""
    loaded = _loaded_after("import atlasd.daemon.__main__")
    assert "atlasd.daemon.command" in loaded
    assert not {m for m in loaded if m == "atlasd.cli" or m.startswith("atlasd.cli.")}


def test_the_pack_schema_check_does_not_load_the_store() -> None:
    """The packs' validator (what clients run before spooling) needs no event store."""
    loaded = _loaded_after(
        "from atlasd.packs.registry import builtin_packs; builtin_packs().check_event('T', {})"
    )
    assert "atlasd.packs.fields" in loaded
    assert not {m for m in loaded if m.startswith("atlasd.eventlog")}


#: What only the daemon's side needs: the SQLite store, its writer and its checker.
_STORE_MODULES = {
    "aiosqlite",
    "atlasd.eventlog.store",
    "atlasd.eventlog.writer",
    "atlasd.eventlog.verify",
}


def _store_modules_after(statement: str) -> set[str]:
    """The store's modules a fresh interpreter holds after running ``statement``."""
    code = f"{statement}; import sys; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split()) & _STORE_MODULES


def test_importing_the_client_does_not_load_the_store() -> None:
    """`import atlasd.client` (and its Atlas facade) leaves SQLite and the store unloaded."""
    statement = "import atlasd.client; from atlasd.client import Atlas, AsyncAtlas, Client"
    assert _store_modules_after(statement) == set()


def test_the_client_commands_do_not_load_the_store() -> None:
    """The CLI's commands that only talk to the daemon load no store either."""
    statement = "from atlasd.cli import emit, metrics, query, status, sync, tail"
    assert _store_modules_after(statement) == set()


def test_building_the_command_line_does_not_load_the_store() -> None:
    """Every ``atlasd`` command builds the whole parser first: the store loads only when
    a command that opens it (backup, restore, rebuild, ...) runs."""
    statement = "from atlasd.cli import build_parser; build_parser()"
    assert _store_modules_after(statement) == set()


def test_the_wire_and_the_config_do_not_load_the_store() -> None:
    """The socket protocol's types and the configuration sit below the store."""
    assert _store_modules_after("import atlasd.wire, atlasd.config") == set()


def test_the_store_input_check_runs_without_the_store() -> None:
    """Validating a new event (what a client does before spooling) needs no store."""
    statement = (
        "from atlasd.events import NewEvent, validate_new_event; "
        "validate_new_event(NewEvent(stream='s', type='T', data={'a': 1}))"
    )
    assert _store_modules_after(statement) == set()
