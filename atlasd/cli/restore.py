"""``atlasd restore BACKUP``: put a backup back in place (stop the daemon first).

The backup (a file written by ``atlasd backup``) is checked, copied into the
data dir and renamed over ``atlasd.db``; the database it replaces is kept as
``atlasd.db.replaced-YYYYmmdd-HHMMSS``, with its WAL folded in (and its
archive directory, if any, as ``archive.replaced-YYYYmmdd-HHMMSS``). The restored
log continues under a new origin, the old one is kept in its lineage
(``atlasd status`` shows ``origin_lineage``), and the sync sends the whole
log again once: the remote counts the events it already holds as duplicates
and stores the rest, so events appended after the restore never clash with
events synced after the backup was taken.

Exit codes: 0 ok, 1 restore failed (a daemon still runs on the data dir, the
backup is not an intact event log), 2 usage (no such backup file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from atlasd.cli._clientcli import UsageError, add_common, guarded, print_json
from atlasd.client.paths import resolve_data_dir
from atlasd.errors import Internal, Unavailable

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "restore", help="put a backup back in place (daemon stopped)", description=__doc__
    )
    parser.add_argument("backup", metavar="BACKUP", help="a file written by atlasd backup")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data dir (default: $ATLASD_DATA_DIR or the default)"
    )
    add_common(parser, json_out=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # the store loads only when this runs: every other command starts without it
    from atlasd.eventlog.backup import restore

    def body() -> int:
        data_dir = resolve_data_dir(args.data_dir)
        try:
            info = restore(Path(args.backup), data_dir)
        except FileNotFoundError as exc:
            raise UsageError(str(exc.args[0] if exc.args else exc)) from exc
        except Unavailable as exc:
            raise Unavailable(f"{exc.message}: stop it, then restore") from exc
        except OSError as exc:
            raise Internal(f"restore into {data_dir} failed: {exc}") from exc
        if args.json:
            print_json(
                {
                    "path": str(info.path),
                    "last_seq": info.last_seq,
                    "events": info.events,
                    "origin": info.new_origin,
                    "previous_origin": info.old_origin,
                    "replaced": None if info.replaced is None else str(info.replaced),
                    "replaced_archive": (
                        None if info.replaced_archive is None else str(info.replaced_archive)
                    ),
                }
            )
        else:
            print(
                f"restored {info.events} events (last seq {info.last_seq}) into {info.path};"
                f" origin {info.new_origin} continues {info.old_origin}"
                + (f"; the replaced database is kept as {info.replaced}" if info.replaced else "")
                + (f", its archive as {info.replaced_archive}" if info.replaced_archive else "")
            )
        return 0

    return guarded("restore", body)
