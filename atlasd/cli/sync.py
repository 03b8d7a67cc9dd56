"""``atlasd sync``: show the sync state, run a round now, re-queue the quarantine.

- ``atlasd sync`` prints the ``status.sync`` fields as a table (``--json``: as JSON);
- ``atlasd sync --now`` triggers a round, waits for it and prints its outcome;
  exit 1 when the round failed (the error is printed);
- ``atlasd sync --retry-rejected`` flags the quarantined events for another
  try (with ``--now``: and waits for the round that sends them).

Exit codes: 0 ok, 1 error reported by the daemon or a failed round, 2 usage,
3 daemon unreachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from atlasd.cli import EXIT_DAEMON_ERROR, EXIT_OK, EXIT_UNREACHABLE
from atlasd.client import Client
from atlasd.errors import AtlasdError, DaemonUnreachable

__all__ = ["add_parser", "run"]

# Order and labels of the table rows; other fields follow, by name.
_FIELDS = (
    "state",
    "acked_seq",
    "pending",
    "oldest_pending_ms",
    "rejected",
    "last_error",
    "next_attempt_ms",
    "remote_high_water",
)
_OUTCOME_FIELDS = (
    "ok",
    "state",
    "sent",
    "accepted",
    "duplicates",
    "rejected",
    "retried",
    "acked_seq",
    "error",
    "next_attempt_ms",
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="show the sync state; run a round now; re-queue rejected events",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--socket", help="daemon socket (default: ATLASD_SOCKET or the default)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--now", action="store_true", help="run a round now, wait for it and print its outcome"
    )
    parser.add_argument(
        "--retry-rejected",
        action="store_true",
        help="send the quarantined (rejected) events again",
    )
    parser.set_defaults(func=run)


def _when(ms: Any) -> str:
    if not isinstance(ms, int):
        return "-"
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name.endswith("_ms") and name != "duration_ms":
        return _when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table(fields: tuple[str, ...], values: dict[str, Any]) -> str:
    names = [f for f in fields if f in values] + sorted(k for k in values if k not in fields)
    width = max((len(n) for n in names), default=0)
    return "\n".join(f"{n:<{width}}  {_cell(n, values[n])}" for n in names)


def run(args: argparse.Namespace) -> int:
    try:
        with Client(args.socket, spool=False) as client:
            if args.now or args.retry_rejected:
                result = client.sync_now(wait=args.now, retry_rejected=args.retry_rejected)
            else:
                result = dict(client.status_raw().get("sync") or {})
    except DaemonUnreachable as exc:
        print(f"atlasd sync: {exc.message}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except AtlasdError as exc:
        print(f"atlasd sync: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_DAEMON_ERROR

    failed = args.now and not result.get("ok", False)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    elif args.now:
        print(_table(("requeued", *_OUTCOME_FIELDS), result))
    elif args.retry_rejected:
        print(f"requeued {result.get('requeued', 0)} rejected events")
    else:
        quarantine = result.pop("quarantine", None) or []
        print(_table(_FIELDS, result))
        for item in quarantine:
            print(
                f"  quarantined seq={item.get('seq')} event_id={item.get('event_id')}"
                f" {item.get('code')}: {item.get('message')}"
            )
    if failed:
        error = result.get("error") or result.get("reason") or "the round did not complete"
        print(f"atlasd sync: round failed: {error}", file=sys.stderr)
        return EXIT_DAEMON_ERROR
    return EXIT_OK
