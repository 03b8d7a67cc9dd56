"""``atlasd tail``: print events; ``-f`` keeps following new ones live.

Without ``--from-seq`` it starts with the last ``-n`` events (10) matching
the filters, however many that is; ``--from-seq A --to-seq B`` prints the
events after seq A up to seq B (any range, read a page at a time).
``--json`` prints one full event envelope per line (NDJSON).
Following ends when the daemon stops (exit 3) or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any

import msgspec

from atlasd.cli._clientcli import UsageError, add_common, format_cell, guarded
from atlasd.client import Client
from atlasd.events import Event

__all__ = ["add_parser", "run"]

#: Events fetched per ``read`` call (the daemon's maximum).
_PAGE = 10_000


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("tail", help="print events; -f follows", description=__doc__)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="last N events")
    parser.add_argument("--from-seq", type=int, metavar="N", help="start after seq N")
    parser.add_argument("--to-seq", type=int, metavar="N", help="stop at seq N (inclusive)")
    parser.add_argument("--stream", metavar="S", help="only this stream")
    parser.add_argument(
        "--type", action="append", dest="types", metavar="T", help="only this type (repeatable)"
    )
    add_common(parser, times=True)
    parser.set_defaults(func=run)


def _line(event: Event, as_json: bool, utc: bool) -> str:
    if as_json:
        return msgspec.json.encode(event).decode()
    data = format_cell("data", event.data, width=120)
    when = format_cell("recorded_at", event.recorded_at, utc=utc)
    return f"{event.seq:>8}  {when}  {event.stream}  {event.type}  {data}"


def _emit(event: Event, as_json: bool, utc: bool = False) -> None:
    sys.stdout.write(_line(event, as_json, utc) + "\n")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.lines < 0:
            raise UsageError("-n must not be negative")
        if args.from_seq is not None and args.from_seq < 0:
            raise UsageError("--from-seq must not be negative")
        if args.to_seq is not None and (args.to_seq < 0 or args.follow):
            raise UsageError("--to-seq takes a seq >= 0 and does not go with -f")
        with Client(args.socket, spool=False) as client:
            cursor = _print_existing(client, args)
            sys.stdout.flush()
            if not args.follow:
                return 0
            with client.subscribe(cursor, stream=args.stream, types=args.types) as events:
                for event in events:
                    _emit(event, args.json, args.utc)
                    sys.stdout.flush()
        return 0

    return guarded("tail", body)


def _print_existing(client: Client, args: argparse.Namespace) -> int:
    """Print what is there now; returns the seq to follow from."""
    last_seq = client.status().last_seq
    end = last_seq if args.to_seq is None else args.to_seq
    if args.from_seq is not None:
        for event in _events(client, args.from_seq, end, args):
            _emit(event, args.json, args.utc)
        return max(int(args.from_seq), min(end, last_seq))
    if args.stream is None and not args.types:
        # Unfiltered: the last N events are simply the last N seqs.
        start = max(0, min(end, last_seq) - args.lines)
        for event in _events(client, start, end, args):
            _emit(event, args.json, args.utc)
        return last_seq
    recent: deque[Event] = deque(maxlen=args.lines)
    recent.extend(_events(client, 0, end, args))
    for event in recent:
        _emit(event, args.json, args.utc)
    return last_seq


def _events(client: Client, after: int, end: int, args: argparse.Namespace) -> Iterator[Event]:
    """The matching events with ``after < seq <= end``, a page at a time (pages may be
    short: the daemon bounds them by bytes too, and says where to go on)."""
    cursor = after
    while cursor < end:
        page = client.read(cursor, stream=args.stream, types=args.types, limit=_PAGE)
        for event in page.events:
            if event.seq > end:
                return
            yield event
        if page.last_seq <= cursor:
            return
        cursor = page.last_seq
