"""The dashboard is a client of the daemon's socket: it never reaches into the daemon or store."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import atlasd.dashboard

PACKAGE = Path(atlasd.dashboard.__file__).parent


def test_dashboard_modules_import_neither_the_daemon_nor_the_event_log() -> None:
    """No module of atlasd.dashboard imports atlasd.daemon or atlasd.eventlog."""
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}"
                for name in names
                if name.startswith(("atlasd.daemon", "atlasd.eventlog"))
            ]
    assert offenders == []


def test_importing_the_dashboard_loads_no_daemon_code() -> None:
    """A fresh interpreter that imports the dashboard has not loaded atlasd.daemon."""
    code = (
        "import sys, atlasd.dashboard; "
        "print(sorted(m for m in sys.modules if m.startswith('atlasd.daemon')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_page_ships_every_asset_it_uses() -> None:
    """Offline: the page refers to no other host; its scripts and styles are in the package."""
    html = (PACKAGE / "static" / "index.html").read_text()
    assert "http://" not in html
    assert "https://" not in html
    for asset in ("app.js", "app.css"):
        assert f"/static/{asset}" in html
        assert (PACKAGE / "static" / asset).is_file()
    script = (PACKAGE / "static" / "app.js").read_text()
    assert "https://" not in script
    assert "innerHTML" not in script  # data goes in as text only
