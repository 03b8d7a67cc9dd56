"""``atlasd export``: write events as NDJSON, one full event envelope per line.

``atlasd export > events.ndjson`` (or ``-o FILE``); ``--from-seq N`` starts
after seq N. ``--data-dir DIR`` reads the data dir's files directly instead
of asking the daemon (read-only, one consistent snapshot), so it works with
the daemon stopped too. The file re-imports with ``atlasd import`` without duplicates
(event ids are kept). Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import IO, Any

import msgspec

from atlasd.cli._clientcli import ProgressBar, UsageError, add_common, guarded, progress
from atlasd.client import Client
from atlasd.files import create_private

__all__ = ["add_parser", "run"]

_PAGE = 10_000


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("export", help="write events as NDJSON", description=__doc__)
    parser.add_argument("--from-seq", type=int, default=0, metavar="N", help="start after seq N")
    parser.add_argument("--stream", metavar="S", help="only this stream")
    parser.add_argument(
        "--type", action="append", dest="types", metavar="T", help="only this type (repeatable)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="read DIR's files (read-only), not the daemon"
    )
    add_common(parser, json_out=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.from_seq < 0:
            raise UsageError("--from-seq must not be negative")
        if args.output and args.output != "-":
            _check_output(Path(args.output))
        if args.data_dir:
            with _output(args.output) as out:
                count = _export_files(Path(args.data_dir), args, out)
            if args.output:
                print(f"exported {count} events to {args.output}", file=sys.stderr)
            return 0
        with Client(args.socket, spool=False) as client:
            last_seq = client.status().last_seq
            with _output(args.output) as out:
                count = _export(client, args, out, last_seq)
        if args.output:
            print(f"exported {count} events to {args.output}", file=sys.stderr)
        return 0

    return guarded("export", body)


def _check_output(path: Path) -> None:
    """Refuse an output path that cannot be written before anything is read."""
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(
            f"--output {path}: directory {parent} does not exist; create it or write elsewhere"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--output {path}: directory {parent} is not writable by this user")
    if path.is_dir():
        raise UsageError(f"--output {path} is a directory; name a file")


@contextlib.contextmanager
def _output(path: str | None) -> Any:
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    temp = f"{path}.part-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)
    try:
        # 0600 whatever the umask: an export holds every event
        with open(create_private(temp), "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _export_files(data_dir: Path, args: argparse.Namespace, out: IO[bytes]) -> int:
    """Write the stored events from the data dir's files (the bodies as stored)."""
    from atlasd.eventlog.offline import stored_events  # the store only on this path

    count = 0
    buf = bytearray()
    with progress("export", total=None) as bar:
        for _seq, body in stored_events(data_dir, args.from_seq, args.stream, args.types):
            buf += body
            buf += b"\n"
            count += 1
            if len(buf) >= 1 << 20:
                out.write(buf)
                buf.clear()
                bar(count)
        out.write(buf)
    return count


def _export(client: Client, args: argparse.Namespace, out: IO[bytes], last_seq: int) -> int:
    """Write events after ``--from-seq`` up to the ``last_seq`` seen at the start."""
    encoder = msgspec.json.Encoder()
    # Seqs are contiguous: unfiltered, the count is known up front.
    total = None if args.stream or args.types else max(0, last_seq - args.from_seq)
    with progress("export", total=total) as bar:
        return _pages(client, args, out, last_seq, encoder, bar)


def _pages(
    client: Client,
    args: argparse.Namespace,
    out: IO[bytes],
    last_seq: int,
    encoder: msgspec.json.Encoder,
    bar: ProgressBar,
) -> int:
    cursor, count = args.from_seq, 0
    while cursor < last_seq:
        page = client.read(cursor, stream=args.stream, types=args.types, limit=_PAGE)
        buf = bytearray()
        for event in page.events:
            if event.seq > last_seq:
                break
            encoder.encode_into(event, buf, len(buf))
            buf += b"\n"
            count += 1
        out.write(buf)
        bar(count)
        if page.last_seq <= cursor:
            break
        cursor = page.last_seq
    return count
