"""``atlasd import FILE``: append the events of an NDJSON file, idempotently.

Each line is an event envelope as ``atlasd export`` writes it (``seq``,
``version``, ``origin`` and ``hash`` are ignored: the daemon assigns its own)
or an ``append_batch`` item. ``occurred_at`` is kept; an exported event that
has none (it predates the field) keeps its ``recorded_at`` as ``occurred_at``,
so the imported log's views are the source's. Event ids are kept, so importing
the same file again appends nothing; lines without one get an id derived from
the file's content and the line number, the same way the spool does. Events
go in batches (``--batch-size``), each all-or-nothing, in file order.

Exit codes: 0 ok, 1 a batch refused by the daemon (earlier batches stay
appended; re-running after fixing the file is safe), 2 usage or an unreadable
file, 3 daemon unreachable.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import msgspec

from atlasd.cli._clientcli import UsageError, add_common, guarded, print_json, progress
from atlasd.client import Client
from atlasd.errors import AtlasdError
from atlasd.events import NewEvent
from atlasd.events.ids import derive_event_id

__all__ = ["add_parser", "run"]


class _Line(msgspec.Struct, kw_only=True):
    """What import reads from a line; other envelope fields are ignored."""

    stream: str
    type: str
    data: dict[str, Any]
    event_id: str | None = None
    meta: dict[str, Any] | None = None
    occurred_at: int | None = None
    recorded_at: int | None = None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import", help="append the events of an NDJSON file", description=__doc__
    )
    parser.add_argument("file", metavar="FILE", help="NDJSON file ('-' for stdin)")
    parser.add_argument(
        "--batch-size", type=int, default=1000, metavar="N", help="events per batch (1000)"
    )
    add_common(parser)
    parser.set_defaults(func=run)


def _read_lines(source: str) -> tuple[list[bytes], str]:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from exc
    return raw.splitlines(keepends=True), hashlib.sha256(raw).hexdigest()


def _events(lines: list[bytes], digest: str) -> list[tuple[int, NewEvent]]:
    decoder = msgspec.json.Decoder(_Line)
    events = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = decoder.decode(line)
        except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
            raise UsageError(f"line {line_no}: {exc}") from exc
        event_id = item.event_id or derive_event_id(digest, line_no)
        events.append(
            (
                line_no,
                NewEvent(
                    stream=item.stream,
                    type=item.type,
                    data=item.data,
                    event_id=event_id,
                    meta=item.meta,
                    occurred_at=item.recorded_at if item.occurred_at is None else item.occurred_at,
                ),
            )
        )
    return events


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        lines, digest = _read_lines(args.file)
        events = _events(lines, digest)
        appended = duplicates = 0
        with (
            Client(args.socket, spool=False) as client,
            progress("import", total=len(events), enabled=not args.json) as bar,
        ):
            for start in range(0, len(events), args.batch_size):
                chunk = events[start : start + args.batch_size]
                try:
                    results = client.append_batch([e for _, e in chunk])
                except AtlasdError as exc:
                    exc.message = (
                        f"lines {chunk[0][0]}-{chunk[-1][0]} refused ({appended} appended "
                        f"and {duplicates} already present before them): {exc.message}"
                    )
                    raise
                dup = sum(1 for r in results if r.duplicate)
                duplicates += dup
                appended += len(results) - dup
                bar(appended + duplicates)
        summary = {"events": len(events), "appended": appended, "duplicates": duplicates}
        if args.json:
            print_json(summary)
        else:
            print(
                f"imported {len(events)} events: {appended} appended, {duplicates} already present"
            )
        return 0

    return guarded("import", body)
