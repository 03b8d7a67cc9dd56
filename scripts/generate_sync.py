"""Generate the blocking client modules from their async sources: ``make generate``.

``python scripts/generate_sync.py`` rewrites each generated module; ``--check`` only
compares and exits 1, naming the stale modules, when one differs from what its
source makes (``make lint`` and the test suite run it).

The code is rewritten by ``unasync`` (``async``/``await`` dropped, ``__aenter__``
-> ``__enter__``, ``AsyncX`` -> ``SyncX``, and the names in ``NAMES``); the
docstrings and comments, which it leaves alone, get the public class names and
the few phrases in ``PROSE``. ``ruff`` then sorts the imports and formats the result.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent

#: source (async) -> generated (blocking), relative to the repository root
MODULES = {
    "atlasd/client/async_client.py": "atlasd/client/sync_client.py",
    "atlasd/client/async_pack_facade.py": "atlasd/client/sync_pack_facade.py",
    "atlasd/client/async_atlas.py": "atlasd/client/sync_atlas.py",
}

#: public classes, whose blocking names carry no prefix
CLASSES = {
    "AsyncClient": "Client",
    "AsyncSubscription": "Subscription",
    "AsyncWatch": "WatchStream",
    "AsyncPackMethods": "PackMethods",
    "AsyncAtlas": "Atlas",
}

#: other names the blocking side spells differently (modules, methods)
NAMES = {
    **CLASSES,
    "aclose": "close",
    "connection": "sync_connection",
    "async_client": "sync_client",
    "async_pack_facade": "sync_pack_facade",
}

#: phrases of docstrings and comments
PROSE = {
    "async with": "with",
    "async for": "for",
    "an async context manager": "a context manager",
    "aclose()": "close()",
    "aclose`": "close`",
}

HEADER = """\
# Generated from {source} by scripts/generate_sync.py: do not edit.
# Change the source, then run `make generate`; `make lint` fails while this file is stale.
"""


def _ruff(*args: str, source: str, path: str) -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    command = [ruff, *args, "--quiet", "--stdin-filename", path, "-"]
    done = subprocess.run(command, input=source, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"ruff {' '.join(args)} failed on {path}:\n{done.stderr}")
    return done.stdout


def generate(source: str, target: str) -> str:
    """The text of ``target`` as ``source`` makes it."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp, "_async", Path(source).name)
        staged.parent.mkdir()
        shutil.copyfile(ROOT / source, staged)
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=NAMES)
        unasync.unasync_files([str(staged)], [rule])
        text = Path(tmp, "_sync", Path(source).name).read_text()
    for old, new in PROSE.items():
        text = text.replace(old, new)
    for old, new in CLASSES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    text = HEADER.format(source=source) + text
    text = _ruff("check", "--fix", "--select", "I", source=text, path=target)
    return _ruff("format", source=text, path=target)


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: scripts/generate_sync.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for source, target in MODULES.items():
        text = generate(source, target)
        path = ROOT / target
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(target)
        else:
            path.write_text(text)
            print(f"generated {target} from {source}")
    for target in stale:
        print(f"{target} is stale: run `make generate`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
