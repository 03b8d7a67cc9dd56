"""What the client-side subcommands share: options, exit codes, output helpers.

Every subcommand that talks to the daemon takes ``--socket`` (and, when it may
spool or read files, ``--data-dir``) resolved as the daemon resolves them,
maps :mod:`atlasd.errors` to the contract's exit codes in one place, and
prints data as JSON with ``--json`` or as a plain table otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from atlasd.cli import EXIT_DAEMON_ERROR, EXIT_UNREACHABLE, EXIT_USAGE
from atlasd.errors import AtlasdError, DaemonUnreachable

__all__ = [
    "Progress",
    "UsageError",
    "add_common",
    "format_cell",
    "guarded",
    "print_json",
    "table",
]


class UsageError(Exception):
    """Bad arguments or input files: exit 2 with the message."""


def add_common(
    parser: argparse.ArgumentParser, *, data_dir: bool = False, json_out: bool = True
) -> None:
    parser.add_argument(
        "--socket", metavar="PATH", help="daemon socket (default: $ATLASD_SOCKET or the default)"
    )
    if data_dir:
        parser.add_argument(
            "--data-dir",
            metavar="DIR",
            help="data dir (default: $ATLASD_DATA_DIR or the default)",
        )
    if json_out:
        parser.add_argument("--json", action="store_true", help="print JSON")


def guarded(name: str, body: Callable[[], int]) -> int:
    """Run ``body``, turning errors into the contract's exit codes and a one-line message."""
    try:
        return body()
    except UsageError as exc:
        print(f"atlasd {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DaemonUnreachable as exc:
        print(f"atlasd {name}: {exc.message}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except AtlasdError as exc:
        print(f"atlasd {name}: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_DAEMON_ERROR
    except BrokenPipeError:
        # ``atlasd export | head``: the reader left; not an error of ours.
        sys.stderr.close()
        return 0
    except OSError as exc:
        # A file the command itself reads or writes (not the daemon's answer).
        where = f" {exc.filename}" if exc.filename else ""
        print(f"atlasd {name}:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DAEMON_ERROR


def print_json(value: Any) -> None:
    print(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _when(ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return f"{stamp:%Y-%m-%d %H:%M:%S}"


def format_cell(name: str, value: Any, width: int = 40) -> str:
    """A value as a table shows it: times readable, JSON compact, long text cut."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int) and name.endswith(("_at", "_ms")):
        text = _when(value) if name != "duration_ms" else str(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as aligned columns with a header line."""
    if not rows:
        return "(no rows)"
    cols = list(columns) if columns else list(rows[0])
    cells = [[format_cell(c, row.get(c)) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


class Progress:
    """A one-line progress counter on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._label = label
        self._total = total
        self._shown = False

    def update(self, done: int) -> None:
        if not self._enabled:
            return
        suffix = f"/{self._total}" if self._total else ""
        self._stream.write(f"\r{self._label}: {done}{suffix}")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
