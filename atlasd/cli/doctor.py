"""``atlasd doctor``: check the configuration, files, daemon, database, sync and remote.

One line per check, ``ok``, ``warn`` or ``fail``, with the command that fixes
it. Exit codes: 0 when nothing failed (warnings allowed), 1 when a check
failed. ``--json`` prints the checks as a list of objects.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from atlasd.cli import EXIT_DAEMON_ERROR, EXIT_OK

if TYPE_CHECKING:
    from atlasd.doctor import Check

__all__ = ["add_parser", "render", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check this machine's atlasd: config, files, daemon, sync, remote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (or ATLASD_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from atlasd.doctor import run_checks  # the checks load httpx and SQLite: only when run

    checks = run_checks(config_file=args.config)
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(checks) + b"\n")
    elif sys.stdout.isatty():
        _show(checks)
    else:
        print(render(checks))
    return EXIT_DAEMON_ERROR if any(c.level == "fail" for c in checks) else EXIT_OK


def _show(checks: list[Check]) -> None:
    """The same lines on a terminal, each level in its colour (none with NO_COLOR)."""
    from rich.text import Text

    from atlasd.cli._clientcli import STATE_STYLES, console

    out = console()
    for line, check in zip(render(checks).split("\n"), _owners(checks), strict=True):
        text = Text(line)
        if line.startswith(check.level):
            text.stylize(STATE_STYLES.get(check.level, ""), 0, len(check.level))
        out.print(text)


def _owners(checks: list[Check]) -> list[Check]:
    """The check each line of :func:`render` belongs to."""
    return [c for c in checks for _ in range(2 if c.fix and c.level != "ok" else 1)]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.level:<4}  {check.name:<{width}}  {check.message}")
        if check.fix and check.level != "ok":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    return "\n".join(lines)
