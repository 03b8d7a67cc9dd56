"""``atlasd query VIEW``: rows of a view (every view of the built-in and operator packs).

``--filter COLUMN=VALUE`` compares as a string; ``--filter COLUMN:=JSON``
compares with a JSON value (``phase:=2``, ``gates_passed:=true``); on a list
column (``tags``, ``dependencies``) the row must hold every given item.
``--tag T`` keeps rows whose ``tags`` hold every given tag. Exit codes: 0 ok,
1 error reported by the daemon (e.g. an unknown view), 2 usage, 3 daemon
unreachable.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from atlasd.cli._clientcli import UsageError, add_common, guarded, print_json, table
from atlasd.client import Client
from atlasd.packs.loader import PackError
from atlasd.packs.registry import PackSet, builtin_packs, default_packs_dir, load_packs

__all__ = ["add_parser", "parse_filters", "run", "views_help"]


def _packs() -> PackSet:
    """The built-in packs and the operator's (those alone when theirs do not load)."""
    try:
        return load_packs(default_packs_dir())
    except PackError:
        return builtin_packs()


def views_help(packs: PackSet) -> str:
    """Every view with its pack, key and columns, one view per line."""
    lines = ["views (pack: view (key; columns)):"]
    for name, view in packs.views.items():
        key = ", ".join(view.key)
        rest = ", ".join(c for c, _ in view.columns if c not in view.key)
        lines.append(f"  {view.pack}: {name} ({key}; {rest})")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> None:
    packs = _packs()
    parser = subparsers.add_parser(
        "query",
        help=f"print the rows of a view ({', '.join(packs.view_names)})",
        description=__doc__,
        epilog=views_help(packs),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("view", help="a view name (listed below)")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COL=VALUE|COL:=JSON",
        help="keep rows whose column equals the value (repeatable)",
    )
    parser.add_argument(
        "--tag", action="append", default=[], metavar="T", help="rows with this tag (repeatable)"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N rows (default 1000)")
    parser.add_argument("--order", choices=("asc", "desc"), help="oldest (asc) or newest first")
    add_common(parser)
    parser.set_defaults(func=run)


def parse_filters(items: list[str], tags: list[str]) -> dict[str, Any] | None:
    """``--filter``/``--tag`` arguments as the ``filter`` object of a query."""
    found: dict[str, Any] = {}
    for item in items:
        if ":=" in item and item.index(":=") < item.find("=") + 1:
            key, _, raw = item.partition(":=")
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--filter {item}: not valid JSON after ':=': {exc}") from exc
        elif "=" in item:
            key, _, value = item.partition("=")
        else:
            raise UsageError(f"--filter {item}: expected COLUMN=VALUE or COLUMN:=JSON")
        if not key:
            raise UsageError(f"--filter {item}: empty column name")
        found[key] = value
    if tags:
        found["tags"] = list(tags)
    return found or None


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        query_filter = parse_filters(args.filter, args.tag)
        if args.limit is not None and args.limit < 1:
            raise UsageError("--limit must be at least 1")
        with Client(args.socket, spool=False) as client:
            rows = client.query(args.view, filter=query_filter, limit=args.limit, order=args.order)
        if args.json:
            print_json(rows)
        else:
            print(table(rows))
        return 0

    return guarded("query", body)
