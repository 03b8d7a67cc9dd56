"""The data path drawn in docs/architecture.md names modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"

# A box in the drawing: a package-relative module such as ``daemon/hub`` or a
# Convex file such as ``convex/functions/http.ts`` / ``lib/engine.ts``.
_PY_BOX = re.compile(r"\b((?:daemon|eventlog|sync|client|packs|events)(?:/[a-z_]+)+)\b")
_TS_BOX = re.compile(r"\b((?:convex/functions/)?(?:lib/)?[a-z_]+\.ts)\b")


def _drawing() -> str:
    text = DOC.read_text()
    section = text.split("## The data path", 1)[1]
    return section.split("```", 2)[1]


def _exists_py(box: str) -> bool:
    base = ROOT / "atlasd" / box
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_every_python_box_in_the_data_path_is_a_module() -> None:
    """Each ``package/module`` named in the drawing is a file under atlasd/."""
    boxes = set(_PY_BOX.findall(_drawing()))
    assert len(boxes) >= 15, boxes
    missing = sorted(b for b in boxes if not _exists_py(b))
    assert missing == []


def test_every_convex_box_in_the_data_path_is_a_function_file() -> None:
    """Each ``.ts`` file named in the drawing is under convex/functions/."""
    boxes = set(_TS_BOX.findall(_drawing()))
    assert len(boxes) >= 4, boxes
    functions = ROOT / "convex" / "functions"
    missing = sorted(
        b for b in boxes if not (functions / b.removeprefix("convex/functions/")).is_file()
    )
    assert missing == []
