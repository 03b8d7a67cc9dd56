"""``atlasd metrics``: the daemon's figures in Prometheus text format.

Events, appends by outcome, group commits and their latency, sync state,
pending events and the oldest one's age, acked seq, remote high water,
quarantine, spool files, database size. ``--textfile PATH`` writes them
atomically for node_exporter's textfile collector (see docs/operations.md).
Exit codes: 0 ok, 3 daemon unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from atlasd.cli import EXIT_OK
from atlasd.cli._clientcli import UsageError, add_common, guarded
from atlasd.client import Client

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="the daemon's figures in Prometheus text format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--textfile",
        metavar="PATH",
        help="write to PATH atomically (node_exporter textfile collector) instead of stdout",
    )
    add_common(parser, json_out=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from atlasd.client.metrics import exposition  # prometheus_client: only when run

    def body() -> int:
        with Client(args.socket, spool=False) as client:
            text = exposition(client.status())
        if args.textfile is None:
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            _write_atomically(Path(args.textfile), text)
        return EXIT_OK

    return guarded("metrics", body)


def _write_atomically(path: Path, text: bytes) -> None:
    """Write then rename, so the collector never reads half a file."""
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write in {path.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        os.chmod(temp, 0o644)  # the collector runs as another user
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
