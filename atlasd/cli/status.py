"""``atlasd status``: what the daemon holds and how its sync stands.

Prints the contract's status fields as a table (``--json``: the daemon's
answer as is). Exit codes: 0 ok, 1 error reported by the daemon, 3 daemon
unreachable.
"""

from __future__ import annotations

import argparse
from typing import Any

from atlasd.cli._clientcli import add_common, format_cell, guarded, print_json, table
from atlasd.client import Client

__all__ = ["add_parser", "render", "run"]

_TOP = ("origin", "last_seq", "events", "streams", "db_bytes", "uptime_s")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="show the daemon's state", description=__doc__)
    add_common(parser)
    parser.set_defaults(func=run)


def _pairs(
    values: dict[str, Any], first: tuple[str, ...], prefix: str = ""
) -> list[tuple[str, str]]:
    names = [k for k in first if k in values] + sorted(k for k in values if k not in first)
    return [(prefix + k, format_cell(k, values[k], width=80)) for k in names]


def render(status: dict[str, Any]) -> str:
    """The human form: ``name  value`` lines, then the projections table."""
    scalars = {k: v for k, v in status.items() if not isinstance(v, (dict, list)) or k == "origin"}
    pairs = _pairs(scalars, _TOP)
    for key, value in status.items():
        if isinstance(value, dict):
            pairs += _pairs(value, (), prefix=f"{key}.")
    width = max(len(k) for k, _ in pairs) if pairs else 0
    lines = [f"{k:<{width}}  {v}" for k, v in pairs]
    lineage = status.get("origin_lineage")
    if isinstance(lineage, list) and lineage:
        lines += ["", "origin lineage (earlier origins of this log):"]
        lines += [table([entry for entry in lineage if isinstance(entry, dict)])]
    projections = status.get("projections")
    if isinstance(projections, list) and projections:
        lines += ["", table([p for p in projections if isinstance(p, dict)])]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        with Client(args.socket, spool=False) as client:
            status = client.status_raw()
        if args.json:
            print_json(status)
        else:
            print(render(status))
        return 0

    return guarded("status", body)
