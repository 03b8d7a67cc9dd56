"""``atlasd tail``: print events; ``-f`` keeps following new ones live.

Without ``--from-seq`` it starts with the last ``-n`` events (10) matching
the filters. ``--json`` prints one full event envelope per line (NDJSON).
Following ends when the daemon stops (exit 3) or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from typing import Any

import msgspec

from atlasd.cli._clientcli import UsageError, add_common, format_cell, guarded
from atlasd.client import Client
from atlasd.eventlog.model import Event

__all__ = ["add_parser", "run"]

#: Events fetched per ``read`` call (the daemon's maximum).
_PAGE = 10_000


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("tail", help="print events; -f follows", description=__doc__)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="last N events")
    parser.add_argument("--from-seq", type=int, metavar="N", help="start after seq N")
    parser.add_argument("--stream", metavar="S", help="only this stream")
    parser.add_argument(
        "--type", action="append", dest="types", metavar="T", help="only this type (repeatable)"
    )
    add_common(parser)
    parser.set_defaults(func=run)


def _line(event: Event, as_json: bool) -> str:
    if as_json:
        return msgspec.json.encode(event).decode()
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    if len(data) > 120:
        data = data[:119] + "…"
    when = format_cell("recorded_at", event.recorded_at)
    return f"{event.seq:>8}  {when}  {event.stream}  {event.type}  {data}"


def _emit(event: Event, as_json: bool) -> None:
    sys.stdout.write(_line(event, as_json) + "\n")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.lines < 0:
            raise UsageError("-n must not be negative")
        if args.from_seq is not None and args.from_seq < 0:
            raise UsageError("--from-seq must not be negative")
        with Client(args.socket, spool=False) as client:
            cursor = _print_existing(client, args)
            sys.stdout.flush()
            if not args.follow:
                return 0
            with client.subscribe(cursor, stream=args.stream, types=args.types) as events:
                for event in events:
                    _emit(event, args.json)
                    sys.stdout.flush()
        return 0

    return guarded("tail", body)


def _print_existing(client: Client, args: argparse.Namespace) -> int:
    """Print what is there now; returns the seq to follow from."""
    if args.from_seq is not None:
        cursor: int = args.from_seq
        while True:
            page = client.read(cursor, stream=args.stream, types=args.types, limit=_PAGE)
            for event in page.events:
                _emit(event, args.json)
            if page.last_seq <= cursor:
                return cursor
            cursor = page.last_seq
    last_seq = int(client.status_raw().get("last_seq", 0))
    if args.stream is None and not args.types:
        # Unfiltered: the last N events are simply the last N seqs.
        start = max(0, last_seq - args.lines)
        page = client.read(start, limit=max(args.lines, 1))
        for event in page.events[: args.lines]:
            _emit(event, args.json)
        return last_seq
    recent: deque[Event] = deque(maxlen=args.lines)
    cursor = 0
    while cursor < last_seq:
        page = client.read(cursor, stream=args.stream, types=args.types, limit=_PAGE)
        recent.extend(e for e in page.events if e.seq <= last_seq)
        if page.last_seq <= cursor:
            break
        cursor = page.last_seq
    for event in recent:
        _emit(event, args.json)
    return last_seq
