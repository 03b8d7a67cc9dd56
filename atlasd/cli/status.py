"""``atlasd status``: what the daemon holds and how its sync stands.

Prints the contract's status fields as ``name value`` lines, then the
origin lineage and projections tables (``--json``: the daemon's answer as
is); times in local time (``--utc``: in UTC). Exit codes: 0 ok, 1 error
reported by the daemon, 3 daemon unreachable.
"""

from __future__ import annotations

import argparse
from typing import Any

from atlasd.cli._clientcli import (
    STATE_STYLES,
    add_common,
    format_cell,
    guarded,
    print_json,
    print_pairs,
    print_table,
)
from atlasd.client import Client

__all__ = ["add_parser", "pairs", "run", "show"]

_TOP = ("origin", "last_seq", "events", "streams", "db_bytes", "uptime_s")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="show the daemon's state", description=__doc__)
    add_common(parser, times=True)
    parser.set_defaults(func=run)


def _pairs(
    values: dict[str, Any], first: tuple[str, ...], utc: bool, prefix: str = ""
) -> list[tuple[str, str]]:
    names = [k for k in first if k in values] + sorted(k for k in values if k not in first)
    return [(prefix + k, format_cell(k, values[k], width=80, utc=utc)) for k in names]


def pairs(status: dict[str, Any], *, utc: bool = False) -> list[tuple[str, str]]:
    """The scalar fields, then each object's fields as ``object.field``."""
    scalars = {k: v for k, v in status.items() if not isinstance(v, (dict, list)) or k == "origin"}
    found = _pairs(scalars, _TOP, utc)
    for key, value in status.items():
        if isinstance(value, dict):
            # the quarantine list is ``atlasd sync --rejected``'s to show
            fields = {k: v for k, v in value.items() if k != "quarantine"}
            found += _pairs(fields, (), utc, prefix=f"{key}.")
    return found


def show(status: dict[str, Any], *, utc: bool = False) -> None:
    """The human form: ``name  value`` lines, then the lineage and projections tables."""
    print_pairs(pairs(status, utc=utc), value_styles=STATE_STYLES)
    lineage = status.get("origin_lineage")
    if isinstance(lineage, list) and lineage:
        print()
        rows = [entry for entry in lineage if isinstance(entry, dict)]
        print_table(rows, utc=utc, title="origin lineage (earlier origins of this log):")
    projections = status.get("projections")
    if isinstance(projections, list) and projections:
        print()
        print_table([p for p in projections if isinstance(p, dict)], utc=utc)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        with Client(args.socket, spool=False) as client:
            status = client.status_raw()
        if args.json:
            print_json(status)
        else:
            show(status, utc=args.utc)
        return 0

    return guarded("status", body)
