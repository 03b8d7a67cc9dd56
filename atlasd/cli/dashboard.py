"""``atlasd dashboard``: serve the web dashboard of the running daemon.

Prints the URL (with its access token) as the first line on stdout and
serves until SIGINT/SIGTERM. Needs the ``dashboard`` extra
(``pip install 'atlasd[dashboard]'``).

Exit codes: 0 stopped, 2 usage (the extra missing, the address taken).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from atlasd.cli import EXIT_USAGE

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve a live web dashboard of builds, tasks, executions, views and sync",
        description=__doc__,
    )
    parser.add_argument(
        "--socket", metavar="PATH", help="daemon socket (default: $ATLASD_SOCKET or the default)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--open", action="store_true", help="open the URL in a browser")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from atlasd.dashboard import DashboardConfig, serve
    except ImportError as exc:
        print(
            f"atlasd dashboard: needs the dashboard extra: pip install 'atlasd[dashboard]' ({exc})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    config = DashboardConfig(
        host=args.host, port=args.port, socket=args.socket, open_browser=args.open
    )
    try:
        return serve(config)
    except OSError as exc:
        print(f"atlasd dashboard: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
