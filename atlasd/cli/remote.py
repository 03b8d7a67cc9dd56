"""``atlasd remote``: read what the Convex deployment holds, with the read token.

- ``atlasd remote query VIEW``: rows of a view on the deployment, one page
  (``--all``: every page), optionally of one ``--origin``, with equality
  ``--filter`` on the view's indexed columns and ``--order asc|desc`` by its
  main time column;
- ``atlasd remote origins``: every machine that synced, with its high water,
  event count and last ingest time.

The deployment is ``--url``, else ``CONVEX_URL``; the token is
``ATLASD_READ_TOKEN`` (never the ingest token). Exit codes: 0 ok, 1 the
deployment refused the read (the reason is printed), 2 usage, 3 the
deployment could not be reached.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from atlasd.cli import EXIT_OK
from atlasd.cli._clientcli import UsageError, add_utc, guarded, print_json, print_table
from atlasd.cli.query import parse_filters

if TYPE_CHECKING:
    # httpx (and the CLI helpers it loads when present) only when a remote command runs:
    # every other command, ``emit`` in shell loops above all, starts without it.
    from atlasd.remote_read import ConvexReader

__all__ = ["add_parser", "run_origins", "run_query"]

# Rows per page; the deployment allows 1..1000.
_MAX_PAGE = 1000


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "remote",
        help="read the Convex deployment's views (ATLASD_READ_TOKEN)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="remote_command", required=True, metavar="COMMAND", help="query or origins"
    )

    query = commands.add_parser(
        "query",
        help="rows of a view on the deployment",
        description="Rows of a view on the deployment, one page or --all, in the order "
        "of its main time column.",
    )
    query.add_argument("view", help="a view name, e.g. builds, tasks, messages")
    query.add_argument("--origin", metavar="ORIGIN", help="only rows created by this machine")
    query.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COL=VALUE|COL:=JSON",
        help="keep rows whose (indexed) column equals the value (repeatable)",
    )
    query.add_argument("--order", choices=("asc", "desc"), help="by the view's main time column")
    query.add_argument(
        "--limit", type=int, metavar="N", help=f"rows per page, 1..{_MAX_PAGE} (default 500)"
    )
    query.add_argument("--after", metavar="CURSOR", help="continue after a previous page")
    query.add_argument("--all", action="store_true", help="follow every page to the end")
    _add_common(query)
    query.set_defaults(func=run_query)

    origins = commands.add_parser(
        "origins",
        help="every machine that synced",
        description="Every machine that synced: high water, events stored, last ingest time.",
    )
    _add_common(origins)
    origins.set_defaults(func=run_origins)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", metavar="URL", help="deployment URL (default: $CONVEX_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_utc(parser)


def _reader(args: argparse.Namespace) -> ConvexReader:
    url = args.url or os.environ.get("CONVEX_URL", "")
    if not url:
        raise UsageError("no deployment: set CONVEX_URL or pass --url")
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"the deployment URL must be http(s): {url!r}")
    token = os.environ.get("ATLASD_READ_TOKEN", "").strip()
    if not token:
        raise UsageError("set ATLASD_READ_TOKEN to the deployment's read token")
    from atlasd.remote_read import ConvexReader

    return ConvexReader(url, token)


def _guarded(name: str, body: Callable[[], int]) -> int:
    from atlasd.remote_read import RemoteReadError, RemoteReadRefused

    # The deployment's refusals carry their reason in the message; the code they
    # inherit (``unavailable``) would only mislead.
    return guarded(
        f"remote {name}",
        body,
        unreachable=RemoteReadError,
        refused=(RemoteReadRefused,),
        unreachable_note="unreachable: ",
        with_code=False,
    )


def run_query(args: argparse.Namespace) -> int:
    def body() -> int:
        filters = parse_filters(args.filter, [])
        size = args.limit if args.limit is not None else 500
        if not 1 <= size <= _MAX_PAGE:
            raise UsageError(f"--limit must be in 1..{_MAX_PAGE}")
        if args.all and args.after:
            raise UsageError("--all reads from the start; drop --after")
        options: dict[str, Any] = {"order": args.order, "filter": filters, "origin": args.origin}
        rows: list[dict[str, Any]] = []
        rebuilding = False
        with _reader(args) as reader:
            cursor: str | None = args.after
            while True:
                page = reader.view_page(args.view, cursor=cursor, page_size=size, **options)
                rows += page.rows
                rebuilding = rebuilding or page.rebuilding
                cursor = page.cursor
                if cursor is None or not args.all:
                    break
        if rebuilding:
            note = f"view {args.view} is being rebuilt on the deployment; rows may be missing"
            print(f"atlasd remote query: {note}", file=sys.stderr)
        if args.json:
            print_json(rows)
        else:
            print_table(rows, utc=args.utc)
        if cursor is not None:
            after = shlex.quote(cursor)
            hint = f"more rows: continue with --after {after} or read all with --all"
            print(hint, file=sys.stderr)
        return EXIT_OK

    return _guarded("query", body)


def run_origins(args: argparse.Namespace) -> int:
    def body() -> int:
        with _reader(args) as reader:
            rows = [
                {
                    "origin": o.origin,
                    "high_water": o.high_water,
                    "events": o.events,
                    "last_ingest_at": o.last_ingest_at,
                }
                for o in reader.origins()
            ]
        if args.json:
            print_json(rows)
        else:
            print_table(rows, utc=args.utc)
        return EXIT_OK

    return _guarded("origins", body)
