"""``atlasd query VIEW``: rows of a view (every view of the built-in and operator packs).

``--filter COLUMN=VALUE`` compares as a string; ``--filter COLUMN:=JSON``
compares with a JSON value (``phase:=2``, ``gates_passed:=true``); on a list
column (``tags``, ``dependencies``) the row must hold every given item.
``--tag T`` keeps rows whose ``tags`` hold every given tag.

One answer is one page (``--limit``, default 1000); when more rows match, a
notice on stderr says so and gives the ``--after`` cursor for the next page.
``--all`` follows every page. ``--order-by`` sorts by a key or time column
(default: creation order); ``--since``/``--until`` keep rows whose time column
is in range, and take a duration back from now (``90s``, ``15m``, ``2h``,
``3d``), an ISO 8601 time (``2026-11-30T12:00:00Z``) or ms since the epoch.
``--format`` prints a table, one JSON array, one JSON object per line
(``ndjson``) or CSV. Exit codes: 0 ok,
1 error reported by the daemon (e.g. an unknown view), 2 usage, 3 daemon
unreachable.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
import sys
import time
from typing import Any

from atlasd.cli._clientcli import UsageError, add_common, guarded, print_json, print_table
from atlasd.client import Client
from atlasd.client.calls import QueryArgs
from atlasd.packs.loader import PackError
from atlasd.packs.registry import PackSet, builtin_packs, default_packs_dir, load_packs

__all__ = ["add_parser", "parse_filters", "parse_when", "run", "views_help"]

FORMATS = ("table", "json", "ndjson", "csv")
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


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
    parser.add_argument(
        "--limit", type=int, metavar="N", help="rows per page (default 1000, at most 10000)"
    )
    parser.add_argument("--order", choices=("asc", "desc"), help="oldest (asc) or newest first")
    parser.add_argument("--order-by", metavar="COLUMN", help="a key or time column of the view")
    parser.add_argument("--since", metavar="WHEN", help="rows at or after WHEN (2h, 3d, ISO, ms)")
    parser.add_argument("--until", metavar="WHEN", help="rows before WHEN (2h, 3d, ISO, ms)")
    parser.add_argument("--all", action="store_true", help="follow every page")
    parser.add_argument("--after", metavar="CURSOR", help="the page after this cursor")
    parser.add_argument(
        "--format", choices=FORMATS, help="output format (default table; --json means json)"
    )
    add_common(parser, times=True)
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


def parse_when(text: str, now_ms: int, option: str) -> int:
    """``--since``/``--until``: a duration back from now, an ISO 8601 time or ms."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if match:
        return max(0, now_ms - int(match[1]) * _UNITS[match[2]])
    if text.isdigit():
        return int(text)
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text}: expected a duration (90s, 15m, 2h, 3d, 1w),"
            " an ISO 8601 time or ms since the epoch"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1000)


class _Output:
    """Writes rows in the chosen format as pages arrive (a table waits for all)."""

    def __init__(self, fmt: str, utc: bool) -> None:
        self.fmt = fmt
        self.utc = utc
        self.held: list[dict[str, Any]] = []
        self.writer: csv.DictWriter[str] | None = None

    def add(self, rows: list[dict[str, Any]]) -> None:
        if self.fmt == "ndjson":
            for row in rows:
                print(json.dumps(row, sort_keys=True, ensure_ascii=False))
        elif self.fmt == "csv":
            for row in rows:
                if self.writer is None:
                    self.writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
                    self.writer.writeheader()
                self.writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        else:
            self.held.extend(rows)

    def finish(self) -> None:
        if self.fmt == "json":
            print_json(self.held)
        elif self.fmt == "table":
            print_table(self.held, utc=self.utc)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "" if value is None else value


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        query_filter = parse_filters(args.filter, args.tag)
        if args.limit is not None and args.limit < 1:
            raise UsageError("--limit must be at least 1")
        if args.all and args.after:
            raise UsageError("--all and --after exclude each other")
        now_ms = time.time_ns() // 1_000_000
        query_args = QueryArgs(
            filter=query_filter,
            limit=args.limit,
            order=args.order,
            order_by=args.order_by,
            since=None if args.since is None else parse_when(args.since, now_ms, "--since"),
            until=None if args.until is None else parse_when(args.until, now_ms, "--until"),
        )
        out = _Output(args.format or ("json" if args.json else "table"), args.utc)
        after: str | None = args.after
        with Client(args.socket, spool=False) as client:
            while True:
                page = client.query_page(args.view, query_args, after)
                out.add(page.rows)
                if page.next is None or not args.all:
                    break
                after = page.next
        out.finish()
        if page.next is not None:
            print(
                f"atlasd query: more rows follow; add --all for every page,"
                f" or --after {page.next} for the next",
                file=sys.stderr,
            )
        return 0

    return guarded("query", body)
