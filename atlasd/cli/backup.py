"""``atlasd backup DEST``: a consistent copy of the event log, while the daemon runs.

Uses SQLite's online backup from a read connection on ``DATA_DIR/atlasd.db``
(one read transaction: a snapshot of one committed state), checks the copy
with ``PRAGMA integrity_check``, and renames it into place. DEST is a file,
or a directory to put ``atlasd-YYYYmmdd-HHMMSS.db`` in. Restore: stop the
daemon, replace ``DATA_DIR/atlasd.db`` with the copy (removing
``atlasd.db-wal`` and ``atlasd.db-shm``), start it.

Exit codes: 0 ok, 1 backup failed, 2 usage (e.g. DEST exists without --force).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from atlasd.cli._clientcli import UsageError, add_common, guarded, print_json, progress
from atlasd.client.paths import resolve_data_dir
from atlasd.errors import Internal

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backup", help="copy the event log consistently while running", description=__doc__
    )
    parser.add_argument("dest", metavar="DEST", help="backup file, or a directory")
    parser.add_argument("--force", action="store_true", help="overwrite an existing DEST file")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data dir (default: $ATLASD_DATA_DIR or the default)"
    )
    add_common(parser, json_out=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # the store loads only when this runs: every other command starts without it
    from atlasd.eventlog.backup import backup

    def body() -> int:
        data_dir = resolve_data_dir(args.data_dir)
        try:
            # one SQLite backup step (one read transaction): its size is not known ahead
            with progress("backup", unit=None, enabled=not args.json):
                info = backup(data_dir, Path(args.dest), overwrite=args.force)
        except FileExistsError as exc:
            raise UsageError(f"{exc.args[0]} (use --force)") from exc
        except FileNotFoundError as exc:
            raise Internal(str(exc.args[0] if exc.args else exc)) from exc
        except OSError as exc:
            raise Internal(f"backup failed: {exc}") from exc
        if args.json:
            print_json(
                {
                    "path": str(info.path),
                    "bytes": info.bytes,
                    "last_seq": info.last_seq,
                    "events": info.events,
                    "seconds": round(info.seconds, 3),
                }
            )
        else:
            print(
                f"backed up {info.events} events (last seq {info.last_seq}, "
                f"{info.bytes} bytes) to {info.path} in {info.seconds:.2f}s"
            )
        return 0

    return guarded("backup", body)
