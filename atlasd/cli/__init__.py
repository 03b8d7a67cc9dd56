"""The ``atlasd`` command: one module per subcommand under ``atlasd.cli``.

Each subcommand module defines ``add_parser(subparsers)``, which registers its
parser and sets ``func`` to a callable taking the parsed namespace and
returning the exit code (:mod:`atlasd.exitcodes`): 0 ok, 1 error reported by
the daemon, 2 usage, 3 daemon unreachable.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

import argcomplete

from atlasd import __version__

__all__ = [
    "EXIT_DAEMON_ERROR",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "plain",
]

from atlasd.exitcodes import EXIT_DAEMON_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE

# Subcommand name -> module under atlasd.cli (``import`` is a keyword).
SUBCOMMANDS: dict[str, str] = {
    "serve": "serve",
    "emit": "emit",
    "status": "status",
    "tail": "tail",
    "query": "query",
    "sync": "sync",
    "rebuild": "rebuild",
    "verify": "verify",
    "compact": "compact",
    "export": "export",
    "import": "import_",
    "backup": "backup",
    "restore": "restore",
    "doctor": "doctor",
    "metrics": "metrics",
    "completion": "completion",
    "dashboard": "dashboard",
    "remote": "remote",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlasd", description="Local event log daemon with Convex sync."
    )
    parser.add_argument("--version", action="version", version=f"atlasd {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(f"atlasd.cli.{module_name}")
        module.add_parser(subparsers)
    for sub in subparsers.choices.values():
        sub.description = plain(sub.description)
        for action in sub._actions:
            action.help = plain(action.help)
    return parser


# ``literal`` and :role:`~pkg.Name` as docstrings write them.
_LITERAL = re.compile(r"``(.+?)``")
_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")


def plain(text: str | None) -> str | None:
    """Docstring markup as a terminal shows text: literals and cross-references bare."""
    if text is None:
        return None
    text = _LITERAL.sub(r"\1", text)
    # ``~`` asks for the last dotted component only, as Sphinx shows it
    return _ROLE.sub(lambda m: m[2].rsplit(".", 1)[-1] if m[1] else m[2], text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Answers a shell's completion request and exits; a no-op otherwise.
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return code
