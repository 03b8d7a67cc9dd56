"""``atlasd rebuild``: rebuild every view from the log (the daemon must be stopped)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from atlasd.cli._clientcli import progress
from atlasd.errors import AtlasdError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="rebuild every view from the event log (daemon stopped)",
        description="Replay the whole log into every view of the loaded packs. Takes the "
        "data dir's lock, so it refuses to run while a daemon uses DATA_DIR.",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="the data dir")
    parser.add_argument(
        "--packs-dir",
        type=Path,
        default=None,
        help="operator pack files (default: ATLASD_PACKS_DIR or the config dir's packs/)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from atlasd.config import default_data_dir
    from atlasd.eventlog import rebuild
    from atlasd.packs.loader import PackError
    from atlasd.packs.registry import default_packs_dir

    data_dir: Path = args.data_dir or default_data_dir()
    packs_dir: Path = args.packs_dir or default_packs_dir()
    try:
        with progress("rebuild", unit="seqs", enabled=not args.json) as bar:
            report = rebuild(data_dir, bar, packs_dir=packs_dir)
    except PackError as error:
        print(f"atlasd rebuild: {error}", file=sys.stderr)
        return 2
    except AtlasdError as error:
        print(f"atlasd rebuild: {error.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"ok": True, "events": report.events, "seconds": report.seconds}))
    else:
        print(f"rebuilt every view from {report.events:,} events in {report.seconds:.2f} s")
    return 0
