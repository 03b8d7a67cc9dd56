"""``python -m atlasd.daemon [serve flags]``: the daemon alone, same as ``atlasd serve``.

Imports only the daemon, not every subcommand, which keeps start-up lean
(useful for tests and service managers).
"""

from __future__ import annotations

import argparse
import sys

from atlasd.daemon import command


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m atlasd.daemon")
    subparsers = parser.add_subparsers(dest="command")
    command.add_parser(subparsers)
    args = parser.parse_args(["serve", *argv])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
