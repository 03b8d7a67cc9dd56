"""``atlasd verify``: check the log (integrity, seq, hash chain) and the views.

Safe while the daemon runs: it reads one consistent snapshot, read-only.
Exit 0 when all is well, 1 with the findings printed otherwise.
"""

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
        "verify",
        help="check the event log and the views (also while the daemon runs)",
        description="SQLite integrity check, seq contiguity, the hash chain, stream versions, "
        "and every view against a fresh replay of the log.",
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
    from atlasd.eventlog import verify
    from atlasd.packs.loader import PackError
    from atlasd.packs.registry import default_packs_dir

    data_dir: Path = args.data_dir or default_data_dir()
    packs_dir: Path = args.packs_dir or default_packs_dir()
    try:
        with progress("verify", unit="seqs", enabled=not args.json) as bar:
            report = verify(data_dir, bar, packs_dir=packs_dir)
    except PackError as error:
        print(f"atlasd verify: {error}", file=sys.stderr)
        return 2
    except AtlasdError as error:
        if args.json:
            print(json.dumps({"ok": False, "error": error.to_wire()}))
        print(f"atlasd verify: {error.message}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "events": report.events,
                    "findings": report.findings,
                    "seconds": round(report.seconds, 3),
                }
            )
        )
    elif report.ok:
        print(f"ok: {report.events:,} events, hash chain intact, every view matches a replay")
    else:
        print(f"{len(report.findings)} finding(s) in {report.events:,} events:")
        for finding in report.findings:
            print(f"  {finding}")
    return 0 if report.ok else 1
