"""``atlasd completion SHELL``: the shell code that completes atlasd's commands and options.

atlasd completion bash > ~/.local/share/bash-completion/completions/atlasd
atlasd completion zsh > "${fpath[1]}/_atlasd"
atlasd completion fish > ~/.config/fish/completions/atlasd.fish
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from argcomplete.shell_integration import shellcode

from atlasd.cli import EXIT_OK

__all__ = ["add_parser", "run"]

SHELLS = ("bash", "zsh", "fish")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print shell completion code (bash, zsh, fish)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(shellcode(["atlasd"], shell=args.shell))
    return EXIT_OK
