"""What the client-side subcommands share: options, exit codes, presentation.

Every subcommand that talks to the daemon takes ``--socket`` (and, when it may
spool or read files, ``--data-dir``) resolved as the daemon resolves them,
maps :mod:`atlasd.errors` to the contract's exit codes in one place, and
prints data as JSON with ``--json`` or for people otherwise.

Presentation lives here alone:

- :func:`print_table` and :func:`print_pairs` print rows and ``name value``
  lines. On a terminal they are drawn with ``rich`` (a header rule, colours
  unless ``NO_COLOR`` is set or ``TERM`` is ``dumb``, the terminal's width);
  anywhere else (a pipe, a file) they are plain columns separated by two
  spaces, one header line, no trailing spaces: stable text for scripts.
  Both align by display width, so CJK and emoji cells line up.
- :func:`format_cell` shows a value as a cell: ``*_at``/``*_ms`` times in
  local time with the zone's offset (``2026-11-30 23:17:35 UTC+01:00``, as
  ``TZ`` says) or in UTC with ``--utc`` (:func:`add_common` with
  ``times=True``); JSON output keeps the raw ms.
- :func:`progress` is the one progress display for long operations (import,
  export, rebuild, verify, backup, compact)::

      with progress("compact", total=n, enabled=not args.json) as bar:
          for done in ...:
              bar(done)             # or bar(done, total) when the total moves

  The bar is a callable ``(done, total=None)``, so it also fits the
  ``(done, total)`` progress callbacks of :mod:`atlasd.eventlog`. It draws on
  stderr only when stderr is a terminal; otherwise it does nothing and
  ``rich`` is not even imported.

``rich`` is imported only when something is drawn on a terminal (or a plain
table measures its cells), so commands whose output is one line (``emit``)
start as fast as before.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from atlasd.cli import EXIT_DAEMON_ERROR, EXIT_UNREACHABLE, EXIT_USAGE
from atlasd.errors import AtlasdError, DaemonUnreachable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "CELL_WIDTH",
    "STATE_STYLES",
    "ProgressBar",
    "UsageError",
    "add_common",
    "add_utc",
    "console",
    "format_cell",
    "format_time",
    "guarded",
    "print_json",
    "print_pairs",
    "print_table",
    "progress",
    "table",
]

#: Colours of the values that tell health (sync states, integrity, doctor levels).
STATE_STYLES = {
    "ok": "green",
    "idle": "green",
    "sending": "cyan",
    "disabled": "dim",
    "warn": "yellow",
    "backoff": "yellow",
    "fail": "bold red",
    "auth_error": "bold red",
}

#: Longest cell a table shows (display cells); longer text is cut with "…".
CELL_WIDTH = 40


class UsageError(Exception):
    """Bad arguments or input files: exit 2 with the message."""


def add_common(
    parser: argparse.ArgumentParser,
    *,
    data_dir: bool = False,
    json_out: bool = True,
    times: bool = False,
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
    if times:
        add_utc(parser)


def add_utc(parser: argparse.ArgumentParser) -> None:
    """``--utc``, for commands that show times."""
    parser.add_argument(
        "--utc", action="store_true", help="show times in UTC (default: local time, as TZ says)"
    )


def guarded(
    name: str,
    body: Callable[[], int],
    *,
    unreachable: type[AtlasdError] = DaemonUnreachable,
    refused: tuple[type[AtlasdError], ...] = (),
    unreachable_note: str = "",
    with_code: bool = True,
) -> int:
    """Run ``body``, turning errors into the contract's exit codes and a one-line
    ``atlasd NAME: ...`` message on stderr.

    ``unreachable`` is the error meaning the other side could not be reached (exit
    3, its message after ``unreachable_note``), except its subclasses in ``refused``;
    every other :class:`~atlasd.errors.AtlasdError` is a refusal (exit 1), shown as
    ``code: message``, or as the message alone without ``with_code`` (for errors
    whose code is not what the user needs to read).
    """
    try:
        return body()
    except UsageError as exc:
        print(f"atlasd {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AtlasdError as exc:
        if isinstance(exc, unreachable) and not isinstance(exc, refused):
            print(f"atlasd {name}: {unreachable_note}{exc.message}", file=sys.stderr)
            return EXIT_UNREACHABLE
        detail = f"{exc.code}: {exc.message}" if with_code else exc.message
        print(f"atlasd {name}: {detail}", file=sys.stderr)
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


# -- cells ---------------------------------------------------------------------------------


def format_time(ms: int, *, utc: bool = False) -> str:
    """ms since the epoch as local time with its offset, or as UTC."""
    try:
        stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        if utc:
            return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"
        local = stamp.astimezone()  # the zone of TZ, else the system's
    except (OverflowError, OSError, ValueError):
        return str(ms)  # beyond what the platform's calendar covers: the number itself
    offset = f"{local:%z}"
    return f"{local:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:5]}"


def _is_time(name: str, value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and name.endswith(("_at", "_ms"))
        and name != "duration_ms"
    )


# Control characters (a terminal acts on them) shown escaped, as Python writes them.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {
    ord("\n"): "\\n",
    ord("\t"): "\\t",
    ord("\r"): "\\r",
}


def format_cell(name: str, value: Any, width: int = CELL_WIDTH, *, utc: bool = False) -> str:
    """A value as a table shows it: times readable, JSON compact, long text cut."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif _is_time(name, value):
        text = format_time(value, utc=utc)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return _cut(text.translate(_CONTROLS), width)


def _cut(text: str, width: int) -> str:
    """``text`` at most ``width`` display cells wide, ending in "…" when cut."""
    if len(text) <= width // 2:
        return text  # no character is wider than two cells
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    used, kept = 1, []  # one cell for the "…"
    for char in text:
        used += cell_len(char)
        if used > width:
            break
        kept.append(char)
    return "".join(kept) + "…"


# -- tables --------------------------------------------------------------------------------


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) for a terminal; no styles when NO_COLOR is set."""
    from rich.console import Console

    no_color = os.environ.get("NO_COLOR", "") != ""
    return Console(
        stderr=stderr,
        force_terminal=True,
        color_system=None if no_color else "auto",
        highlight=False,
        emoji=False,
        markup=False,
    )


def _on_terminal() -> bool:
    return sys.stdout.isatty()


def _cells(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] | None, utc: bool
) -> tuple[list[str], list[list[str]]]:
    cols = list(columns) if columns else list(rows[0])
    return cols, [[format_cell(c, row.get(c), utc=utc) for c in cols] for row in rows]


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, *, utc: bool = False
) -> str:
    """Rows as plain aligned columns with a header line (the form off a terminal)."""
    if not rows:
        return "(no rows)"
    cols, cells = _cells(rows, columns, utc)
    return _plain([cols, *cells])


def _plain(lines: list[list[str]]) -> str:
    from rich.cells import cell_len

    widths = [max(cell_len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(v + " " * (w - cell_len(v)) for v, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    utc: bool = False,
    title: str | None = None,
) -> None:
    """Print rows: a rich table on a terminal, :func:`table`'s plain text elsewhere."""
    if not _on_terminal():
        if title:
            print(title)
        print(table(rows, columns, utc=utc))
        return
    out = console()
    if title:
        out.print(title, style="bold")
    if not rows:
        out.print("(no rows)", style="dim")
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cols, cells = _cells(rows, columns, utc)
    grid = Table(box=box.SIMPLE_HEAD, header_style="bold cyan", show_edge=False, pad_edge=False)
    for col in cols:
        grid.add_column(col, no_wrap=True, overflow="ellipsis")
    for line in cells:
        grid.add_row(*(Text(v, style="dim") if v == "-" else Text(v) for v in line))
    out.print(grid)


def print_pairs(
    pairs: Sequence[tuple[str, str]], *, value_styles: dict[str, str] | None = None
) -> None:
    """Print ``name  value`` lines, names aligned; ``value_styles`` colours those values."""
    if not pairs:
        return
    if not _on_terminal():
        print(_plain([[k, v] for k, v in pairs]))
        return
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        style = (value_styles or {}).get(value, "dim" if value == "-" else "")
        grid.add_row(Text(key), Text(value, style=style))
    console().print(grid)


# -- progress ------------------------------------------------------------------------------


class ProgressBar:
    """``bar(done, total=None)`` moves the bar; a no-op when nothing is drawn."""

    def __init__(self, bar: Progress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    def __call__(self, done: int, total: int | None = None) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)


@contextlib.contextmanager
def progress(
    label: str, total: int | None = None, *, unit: str | None = "events", enabled: bool = True
) -> Iterator[ProgressBar]:
    """A progress bar on stderr while the block runs, when stderr is a terminal.

    ``total`` None draws a pulsing bar until a total is given; ``unit`` None
    shows no count (a step whose size is unknown, e.g. a backup).
    ``enabled=False`` (``--json``) draws nothing.
    """
    if not (enabled and sys.stderr.isatty()):
        yield ProgressBar()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[ProgressColumn | str] = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
    ]
    if unit is not None:
        columns += [MofNCompleteColumn(), TextColumn(unit), TaskProgressColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), refresh_per_second=5) as bar:
        yield ProgressBar(bar, bar.add_task(label, total=total))
