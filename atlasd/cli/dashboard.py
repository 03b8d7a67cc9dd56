"""``atlasd dashboard``: serve the web dashboard of the running daemon.

Prints the URL (with its access token) as the first line on stdout and
serves until SIGINT/SIGTERM. Needs the ``dashboard`` extra
(``pip install 'atlasd[dashboard]'``).

Exit codes: 0 stopped, 2 usage (the extra missing, the address taken).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        type=Path,
        help="take the access token from this file (not open to others; at least 16"
        " characters) instead of a new one each start, so a scraper can send it as"
        " 'Authorization: Bearer TOKEN' to /metrics",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from atlasd.dashboard import DashboardConfig, serve
        from atlasd.dashboard.security import TokenFileError, read_token_file
    except ImportError as exc:
        print(
            f"atlasd dashboard: needs the dashboard extra: pip install 'atlasd[dashboard]' ({exc})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        token = None if args.token_file is None else read_token_file(args.token_file)
    except TokenFileError as exc:
        print(f"atlasd dashboard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = DashboardConfig(
        host=args.host, port=args.port, socket=args.socket, open_browser=args.open, token=token
    )
    try:
        return serve(config)
    except OSError as exc:
        print(f"atlasd dashboard: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
