"""The ``atlasd`` command: one module per subcommand under ``atlasd.cli``.

Each subcommand module defines ``add_parser(subparsers)``, which registers its
parser and sets ``func`` to a callable taking the parsed namespace and
returning the exit code (:mod:`atlasd.exitcodes`): 0 ok, 1 error reported by
the daemon, 2 usage, 3 daemon unreachable.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = [
    "EXIT_DAEMON_ERROR",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
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
    "export": "export",
    "import": "import_",
    "backup": "backup",
    "doctor": "doctor",
    "dashboard": "dashboard",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlasd", description="Local event log daemon with Convex sync."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(f"atlasd.cli.{module_name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return code
