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
