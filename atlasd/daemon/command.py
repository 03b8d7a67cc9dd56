"""``atlasd serve``: run the daemon in the foreground until SIGTERM/SIGINT.

Configuration merges defaults < ``--config`` TOML < environment < these
flags (see :mod:`atlasd.config`). Exit codes: 0 after a clean stop, 1 when
the daemon cannot start (data dir locked, socket in use, store unusable),
2 for a bad configuration or a bad operator pack (``FILE:LINE: reason``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio

from atlasd.config import ConfigError, resolve_config
from atlasd.daemon.log import configure_logging
from atlasd.exitcodes import EXIT_DAEMON_ERROR, EXIT_OK, EXIT_USAGE
from atlasd.redact import Redactor
from atlasd.redact import install as install_redactor

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the daemon (foreground)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (or ATLASD_CONFIG)")
    parser.add_argument("--socket", metavar="PATH", help="socket path (or ATLASD_SOCKET)")
    parser.add_argument("--data-dir", metavar="DIR", help="data dir (or ATLASD_DATA_DIR)")
    parser.add_argument(
        "--packs-dir", metavar="DIR", help="operator pack files (or ATLASD_PACKS_DIR)"
    )
    parser.add_argument(
        "--token-file", metavar="FILE", help="file holding the ingest token (never printed)"
    )
    parser.add_argument("--ingest-url", metavar="URL", help="sync endpoint (or ATLASD_INGEST_URL)")
    parser.add_argument(
        "--socket-group", metavar="GROUP", help="group allowed on the socket (mode 0660)"
    )
    parser.add_argument(
        "--max-connections", type=int, metavar="N", help="connections served at once (1024)"
    )
    parser.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        help="SQLite synchronous: FULL makes every acknowledged append durable (default)",
    )
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="log level (info)"
    )
    parser.add_argument(
        "--no-spool",
        dest="spool_enabled",
        action="store_false",
        default=None,
        help="do not ingest files from DATA_DIR/spool",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    flags = {
        "socket": args.socket,
        "data_dir": args.data_dir,
        "packs_dir": args.packs_dir,
        "token_file": args.token_file,
        "sync.ingest_url": args.ingest_url,
        "socket_group": args.socket_group,
        "max_connections": args.max_connections,
        "synchronous": args.synchronous,
        "log_level": args.log_level,
        "spool_enabled": args.spool_enabled,
    }
    try:
        config = resolve_config(flags, config_file=args.config)
    except ConfigError as exc:
        # the token may sit where it does not belong (a URL, a wrong variable)
        token = os.environ.get("ATLASD_INGEST_TOKEN", "").strip()
        print(f"atlasd serve: {Redactor([token])(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    if config.sync.token is not None:
        install_redactor(Redactor([config.sync.token.reveal()]))
    from atlasd.packs.loader import PackError
    from atlasd.packs.registry import load_packs

    try:
        load_packs(config.packs_dir)  # checked before anything starts
    except PackError as exc:
        print(f"atlasd serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.log_level)
    from atlasd.daemon.app import StartupError, serve

    try:
        anyio.run(serve, config, backend="asyncio")
    except StartupError as exc:
        print(f"atlasd serve: {exc}", file=sys.stderr)
        return EXIT_DAEMON_ERROR
    except KeyboardInterrupt:
        # SIGINT before the signal receiver was installed: nothing was served yet.
        return EXIT_OK
    return EXIT_OK
