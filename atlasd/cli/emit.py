"""``atlasd emit STREAM TYPE [DATA_JSON]``: append one event.

The payload is the third argument, or ``--data @FILE`` / ``--data -`` (stdin);
it must be a JSON object. When no daemon answers, the event goes to the spool
(``DATA_DIR/spool``) and is appended when the daemon next starts; so does
an event the daemon cannot take now (``unavailable``: at its connection
limit, stopping). The command says so and exits 0. Before spooling, the
event is checked exactly as the daemon checks it: what it would refuse is
refused with its message (exit 1). ``--expected-version`` cannot be checked
offline, so such an event is never spooled (exit 3).

Exit codes: 0 appended or spooled, 1 refused by the daemon, 2 usage or bad
JSON, 3 daemon unreachable (and not spooled).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from atlasd.cli._clientcli import UsageError, add_common, guarded, print_json
from atlasd.client import Client

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emit", help="append one event (spooled when the daemon is down)", description=__doc__
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("stream", help='stream name, e.g. "build:b-42"')
    parser.add_argument("type", help='event type, e.g. "BuildStarted"')
    parser.add_argument("data_json", nargs="?", metavar="DATA_JSON", help="payload (JSON object)")
    parser.add_argument("--data", metavar="@FILE|-", help="read the payload from FILE or stdin")
    parser.add_argument("--meta", metavar="JSON", help="meta object (JSON)")
    parser.add_argument("--event-id", metavar="UUID", help="event id (default: a new UUIDv7)")
    parser.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="append only if the stream is at version N (0: new stream)",
    )
    parser.add_argument(
        "--no-spool", action="store_true", help="fail (exit 3) instead of spooling when offline"
    )
    add_common(parser, data_dir=True)
    parser.set_defaults(func=run)


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _payload(args: argparse.Namespace) -> dict[str, Any]:
    if args.data_json is not None and args.data is not None:
        raise UsageError("give the payload either as DATA_JSON or with --data, not both")
    if args.data is None:
        return _object(args.data_json if args.data_json is not None else "{}", "DATA_JSON")
    if args.data == "-":
        return _object(sys.stdin.read(), "stdin")
    if args.data.startswith("@"):
        path = Path(args.data[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from exc
        return _object(text, str(path))
    return _object(args.data, "--data")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        data = _payload(args)
        meta = _object(args.meta, "--meta") if args.meta is not None else None
        with Client(args.socket, data_dir=args.data_dir, spool=not args.no_spool) as client:
            outcome = client.append(
                args.stream,
                args.type,
                data,
                event_id=args.event_id,
                meta=meta,
                expected_version=args.expected_version,
            )
        if args.json:
            print_json(
                {
                    "event_id": outcome.event_id,
                    "seq": outcome.seq,
                    "version": outcome.version,
                    "duplicate": outcome.duplicate,
                    "spooled": outcome.spooled,
                    "spool_file": outcome.spool_file,
                    "spool_reason": outcome.spool_reason,
                }
            )
        elif outcome.spooled:
            print(
                f"{outcome.spool_reason or 'no daemon answers'}: spooled event"
                f" {outcome.event_id} to {outcome.spool_file}; the daemon appends it"
                " when it can"
            )
        else:
            what = "duplicate of" if outcome.duplicate else "appended"
            print(f"{what} seq={outcome.seq} version={outcome.version} event_id={outcome.event_id}")
        return 0

    return guarded("emit", body)
