"""Reading the whole log from a data dir's files, without a daemon.

``atlasd export --data-dir`` uses it: a read-only connection (``mode=ro``,
like ``verify``) and one read transaction, so it sees one consistent snapshot
whether or not a daemon is appending; archived events come from their
segments, then the live table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog.archive import ArchiveSet, read_records
from atlasd.eventlog.datadir import db_path
from atlasd.eventlog.rows import body_of
from atlasd.eventlog.sql import Statements, connect, require_current, snapshot, translated

__all__ = ["stored_events"]

_CHUNK = 5_000


class _Head(msgspec.Struct):
    stream: str
    type: str


_decode_head = msgspec.json.Decoder(_Head).decode


def stored_events(
    data_dir: Path,
    from_seq: int = 0,
    stream: str | None = None,
    types: Sequence[str] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """``(seq, stored body)`` of every event after ``from_seq`` (of ``stream`` and of
    ``types`` when given), in seq order, as of the moment the read begins.

    Error handling: a missing database or a segment that fails its record raises
    :class:`Unavailable`; sqlite3 errors are translated.
    """
    path = db_path(data_dir)
    if not path.exists():
        raise Unavailable(f"no atlasd database at {path}")
    wanted = set(types) if types else None
    with translated():
        conn = connect(path, readonly=True)
    try:
        with snapshot(conn):  # one snapshot from the first event to the last
            require_current(conn)
            archives = ArchiveSet(data_dir, read_records(conn))
            for seq, body in archives.iter_after(from_seq):
                if stream is not None or wanted is not None:
                    head = _decode_head(body)
                    if (stream is not None and head.stream != stream) or (
                        wanted is not None and head.type not in wanted
                    ):
                        continue
                yield seq, body
            cursor = max(from_seq, archives.last_seq)
            while True:
                rows = conn.execute(Statements.rows_after, (cursor, _CHUNK)).fetchall()
                if not rows:
                    break
                for row in rows:
                    if (stream is not None and row[2] != stream) or (
                        wanted is not None and row[4] not in wanted
                    ):
                        continue
                    yield int(row[0]), body_of(*row)
                cursor = int(rows[-1][0])
    finally:
        conn.close()
