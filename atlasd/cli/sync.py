"""``atlasd sync``: show the sync state, run a round now, re-queue the quarantine.

- ``atlasd sync`` prints the ``status.sync`` fields as a table (``--json``: as JSON);
- ``atlasd sync --now`` triggers a round, waits for it and prints its outcome;
  exit 1 when the round failed (the error is printed);
- ``atlasd sync --rejected`` lists the quarantine: each refused event's seq,
  id and the remote's reason (the first 50; a notice on stderr says when
  more are quarantined);
- ``atlasd sync --retry-rejected`` flags the quarantined events for another
  try (with ``--now``: and waits for the round that sends them).

Times are local (``--utc``: UTC).

Exit codes: 0 ok, 1 error reported by the daemon or a failed round, 2 usage,
3 daemon unreachable.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from atlasd.cli import EXIT_DAEMON_ERROR, EXIT_OK
from atlasd.cli._clientcli import (
    STATE_STYLES,
    UsageError,
    add_common,
    format_cell,
    guarded,
    print_json,
    print_pairs,
    print_table,
)
from atlasd.client import Client, SyncNowResult, SyncStatus

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
    parser.add_argument(
        "--now", action="store_true", help="run a round now, wait for it and print its outcome"
    )
    parser.add_argument(
        "--rejected",
        action="store_true",
        help="list the quarantined (rejected) events with the remote's reasons",
    )
    parser.add_argument(
        "--retry-rejected",
        action="store_true",
        help="send the quarantined (rejected) events again",
    )
    add_common(parser, times=True)
    parser.set_defaults(func=run)


def _pairs(fields: tuple[str, ...], values: dict[str, Any], utc: bool) -> list[tuple[str, str]]:
    names = [f for f in fields if f in values] + sorted(k for k in values if k not in fields)
    return [(n, format_cell(n, values[n], width=200, utc=utc)) for n in names]


def _show_rejected(sync: SyncStatus, as_json: bool) -> None:
    """The quarantine as the status shows it: its first entries, and how many there are."""
    quarantine = msgspec.to_builtins(sync.quarantine)
    if as_json:
        print_json({"rejected": sync.rejected, "quarantine": quarantine})
        return
    if not quarantine:
        print("nothing is quarantined")
        return
    print_table(quarantine, ("seq", "event_id", "code", "message"), title="quarantined:")
    if sync.rejected > len(quarantine):
        print(
            f"atlasd sync: {sync.rejected} events are quarantined;"
            f" the first {len(quarantine)} are shown",
            file=sys.stderr,
        )


def _show_outcome(result: SyncNowResult, args: argparse.Namespace) -> int:
    """What ``sync_now`` answered; exit 1 when a round waited for did not complete."""
    values = msgspec.to_builtins(result)  # the fields this answer carries
    if args.json:
        print_json(values)
    elif args.now:
        print_pairs(
            _pairs(("requeued", *_OUTCOME_FIELDS), values, args.utc), value_styles=STATE_STYLES
        )
    else:
        print(f"requeued {result.requeued or 0} rejected events")
    if args.now and result.ok is not True:
        error = result.error or result.reason or "the round did not complete"
        print(f"atlasd sync: round failed: {error}", file=sys.stderr)
        return EXIT_DAEMON_ERROR
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.rejected and (args.now or args.retry_rejected):
            raise UsageError(
                "--rejected lists the quarantine; give it without --now/--retry-rejected"
            )
        with Client(args.socket, spool=False) as client:
            if args.now or args.retry_rejected:
                return _show_outcome(
                    client.sync_now(wait=args.now, retry_rejected=args.retry_rejected), args
                )
            sync = client.status().sync
        if args.rejected:
            _show_rejected(sync, args.json)
        elif args.json:
            print_json(msgspec.to_builtins(sync))
        else:
            fields = msgspec.to_builtins(sync)
            del fields["quarantine"]  # listed as a table below
            print_pairs(_pairs(_FIELDS, fields, args.utc), value_styles=STATE_STYLES)
            if sync.quarantine:
                print()
                _show_rejected(sync, as_json=False)
        return EXIT_OK

    return guarded("sync", body)
