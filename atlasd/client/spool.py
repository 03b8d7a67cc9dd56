"""Write events to the spool drop directory when no daemon answers.

A spool file is NDJSON, one event per line, each line shaped like an
``append_batch`` item (``stream``, ``type``, ``data``, ``event_id``,
optional ``meta``). The daemon ingests each file as one atomic batch.

Resource handling: the file follows the producer's contract of
:mod:`atlasd.spoolname`: written under a temporary name (the daemon ignores
it) with ``O_EXCL``, fsynced, renamed to its final (unique) name, and the
directory is fsynced, so the daemon never sees a partial file and a power
cut never loses a renamed one.

Error handling: an ``OSError`` while writing removes the temporary file and
propagates from :func:`write_spool_file`; :func:`spool_events`, the clients'
fallback, turns it into a one-line error naming the spool dir and the fix.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

from atlasd.errors import AtlasdError, DaemonUnreachable, InvalidValue
from atlasd.events import NewEvent
from atlasd.files import fsync_dir
from atlasd.spoolname import SPOOL_SUFFIX, TEMP_PREFIX, new_spool_names

from .calls import check_offline
from .results import AppendOutcome

__all__ = ["SPOOL_SUFFIX", "TEMP_PREFIX", "spool_events", "write_spool_file"]

#: Spool files are readable by the directory's group, so a system daemon whose
#: group owns a setgid spool dir can read what users drop there.
_FILE_MODE = 0o640

_encoder = msgspec.json.Encoder()


def write_spool_file(spool_dir: Path, events: Sequence[NewEvent]) -> Path:
    """Write ``events`` as one spool file and return its final path.

    Every event must carry an ``event_id`` (so re-ingesting never duplicates)
    and no ``expected_version`` (it cannot be checked offline).
    """
    if not events:
        raise InvalidValue("nothing to spool: no events")
    for index, event in enumerate(events):
        if event.event_id is None:
            raise InvalidValue(f"events[{index}].event_id is required to spool an event")
        if event.expected_version is not None:
            raise InvalidValue(
                f"events[{index}].expected_version cannot be checked offline; not spooled"
            )
    body = b"".join(_encoder.encode(_to_line(event)) + b"\n" for event in events)

    spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp_name, final_name = new_spool_names()
    temp, final = spool_dir / temp_name, spool_dir / final_name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, _FILE_MODE)
    try:
        try:
            os.fchmod(fd, _FILE_MODE)  # the umask may have narrowed it
            view = memoryview(body)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(spool_dir)
    return final


def spool_events(
    events: list[NewEvent], cause: AtlasdError, spool_dir: Path | None, *, batch: bool
) -> list[AppendOutcome]:
    """The clients' fallback when the daemon cannot take ``events`` now (``cause``:
    unreachable, or unavailable: at its connection limit, stopping).

    The events are checked as the daemon would check them (refused with the
    daemon's :class:`InvalidValue` otherwise), then written as one spool file.
    ``spool_dir`` None means spooling is off: ``cause`` is raised.
    """
    reason = (
        cause.message
        if isinstance(cause, DaemonUnreachable)
        else f"the daemon is unavailable ({cause.message})"
    )
    refuse = type(cause)
    if spool_dir is None:
        raise refuse(f"{reason}; spool disabled, the event was not kept")
    if any(e.expected_version is not None for e in events):
        raise refuse(
            f"{reason}; an append with expected_version cannot be checked offline,"
            " so it was not spooled"
        )
    check_offline(events, batch=batch)
    try:
        path = write_spool_file(spool_dir, events)
    except OSError as exc:
        raise refuse(
            f"{reason}, and the spool {spool_dir} cannot be written ({exc.strerror or exc}):"
            " make it writable by this user, or point --data-dir / ATLASD_DATA_DIR"
            " at the daemon's data dir"
        ) from None
    return [AppendOutcome.spooled_to(e.event_id or "", str(path), reason) for e in events]


def _to_line(event: NewEvent) -> NewEvent:
    """The event as its spool line holds it: a plain NewEvent (a subclass, such as the
    socket protocol's ``append`` request, would carry its own fields into the file)."""
    if type(event) is NewEvent:
        return event
    return NewEvent(
        stream=event.stream,
        type=event.type,
        data=event.data,
        event_id=event.event_id,
        meta=event.meta,
        occurred_at=event.occurred_at,
    )
