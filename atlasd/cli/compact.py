"""``atlasd compact``: move old events into archive segments (the daemon must be stopped).

Which events move is set by ``[retention]`` in the config file
(``archive_after_days``, ``archive_past_bytes``; retention is off until one is
set) or by ``--older-than-days`` / ``--past-bytes``. With sync enabled only
synced events move. Reads, ``export``, ``rebuild`` and ``verify`` go on seeing
the whole log. A running daemon with retention set compacts by itself; this
command is for a stopped one, and converts a database made before incremental
auto-vacuum (one full rewrite) so that the daemon's runs shrink the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from atlasd.errors import AtlasdError
from atlasd.exitcodes import EXIT_DAEMON_ERROR, EXIT_OK, EXIT_USAGE

__all__ = ["add_parser", "run"]

_DAY_MS = 86_400_000


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compact",
        help="move old events into compressed archive segments (daemon stopped)",
        description=__doc__,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (or ATLASD_CONFIG)")
    parser.add_argument("--data-dir", default=None, help="the data dir")
    parser.add_argument(
        "--older-than-days",
        type=int,
        default=None,
        metavar="N",
        help="archive events recorded more than N days ago (default: retention.archive_after_days)",
    )
    parser.add_argument(
        "--past-bytes",
        default=None,
        metavar="SIZE",
        help="archive the oldest events while the database is larger than SIZE"
        " (bytes, or with a unit: 512MiB; default: retention.archive_past_bytes)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from atlasd.cli._clientcli import progress
    from atlasd.config import ConfigError, parse_size, resolve_config
    from atlasd.eventlog.compact import compact

    try:
        config = resolve_config({"data_dir": args.data_dir}, config_file=args.config)
        past_bytes = (
            parse_size(args.past_bytes, "--past-bytes")
            if args.past_bytes is not None
            else config.retention.archive_past_bytes
        )
    except ConfigError as error:
        print(f"atlasd compact: {error}", file=sys.stderr)
        return EXIT_USAGE
    days = args.older_than_days
    if days is None:
        days = config.retention.archive_after_days
    if days is None and past_bytes is None:
        print(
            "atlasd compact: retention is off: set [retention] archive_after_days or"
            " archive_past_bytes in the config file, or pass --older-than-days N"
            " or --past-bytes SIZE",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if days is not None and days < 0:
        print("atlasd compact: --older-than-days must not be negative", file=sys.stderr)
        return EXIT_USAGE
    try:
        with progress("compact", enabled=not args.json) as bar:
            report = compact(
                config.data_dir,
                older_than_ms=None if days is None else days * _DAY_MS,
                past_bytes=past_bytes,
                synced_only=config.sync.enabled,
                segment_events=config.retention.segment_events,
                progress=lambda done, total: bar(done, total),
            )
    except AtlasdError as error:
        print(f"atlasd compact: {error.message}", file=sys.stderr)
        return EXIT_DAEMON_ERROR
    if args.json:
        print(json.dumps({"ok": True, **{k: getattr(report, k) for k in report.__struct_fields__}}))
    else:
        print(
            f"archived {report.archived:,} events in {report.segments} segments;"
            f" database {report.db_bytes_before:,} -> {report.db_bytes_after:,} bytes"
        )
        if report.converted:
            print("the database now gives freed pages back in small steps (incremental vacuum)")
    return EXIT_OK
