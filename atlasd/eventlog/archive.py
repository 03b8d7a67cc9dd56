"""Archive segments: events moved out of the live table, and reading them back.

A segment is ``DATA_DIR/archive/seg-FIRST-LAST.ndjson.z``: the stored bodies of
seqs FIRST..LAST (exactly as the events table held them, one per line, in seq
order), zlib-compressed. Each segment the log relies on has a record in the
``archives`` table naming its file, seq range, the hash before its first event
and of its last, its event count, byte size and SHA-256. A segment file
without a record is an interrupted compaction's leftover: readers ignore it
and the next compaction removes it.

Segments never change once recorded; ``verify`` checks each against its
record and runs the hash chain through them into the live table.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from atlasd.errors import Unavailable
from atlasd.eventlog.sql import Statements
from atlasd.events.validation import MAX_EVENT_BYTES
from atlasd.files import create_private, fsync_dir

__all__ = [
    "ARCHIVE_DIR",
    "ArchiveRecord",
    "ArchiveSet",
    "archive_dir",
    "read_records",
    "read_segment",
    "segment_bytes",
    "segment_name",
    "write_segment",
]

ARCHIVE_DIR = "archive"
# zlib's best: segments are written once and read rarely
_LEVEL = 9


class ArchiveRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the ``archives`` table."""

    first_seq: int
    last_seq: int
    #: The hash of the event before ``first_seq`` (the chain's link into the segment).
    prev_hash: str
    last_hash: str
    events: int
    file: str
    bytes: int
    sha256: str


class _Head(msgspec.Struct):
    seq: int
    stream: str
    type: str


_decode_head = msgspec.json.Decoder(_Head).decode


def archive_dir(data_dir: Path) -> Path:
    return data_dir / ARCHIVE_DIR


def segment_name(first_seq: int, last_seq: int) -> str:
    return f"seg-{first_seq:012d}-{last_seq:012d}.ndjson.z"


def read_records(conn: sqlite3.Connection) -> list[ArchiveRecord]:
    """The recorded archives in seq order (none on a log never compacted)."""
    return [
        ArchiveRecord(
            first_seq=int(a),
            last_seq=int(b),
            prev_hash=str(c),
            last_hash=str(d),
            events=int(e),
            file=str(f),
            bytes=int(g),
            sha256=str(h),
        )
        for a, b, c, d, e, f, g, h in conn.execute(Statements.archives)
    ]


def write_segment(
    directory: Path, first_seq: int, last_seq: int, bodies: Sequence[bytes]
) -> tuple[str, int, str]:
    """Write a segment durably; returns (file name, bytes, SHA-256 hex).

    Written under a temporary name with O_EXCL (mode 0600), fsynced, renamed
    into place and the directory fsynced (and the data dir, when this made the
    archive directory): a crash leaves either no segment or a
    whole one (an unrecorded whole one is an orphan, see the module docstring).
    """
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass
    else:  # the directory's own name, in the data dir, durable before a segment relies on it
        fsync_dir(directory.parent)
    name = segment_name(first_seq, last_seq)
    blob = zlib.compress(b"".join(body + b"\n" for body in bodies), _LEVEL)
    temp = directory / f".{name}.tmp-{os.getpid()}"
    temp.unlink(missing_ok=True)
    fd = create_private(temp)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, directory / name)
    fsync_dir(directory)
    return name, len(blob), hashlib.sha256(blob).hexdigest()


def read_segment(directory: Path, record: ArchiveRecord, *, check: bool = True) -> list[bytes]:
    """The bodies of a recorded segment, in seq order.

    Error handling: a missing, altered or undecodable segment raises
    :class:`Unavailable` naming the file, and so does anything but a regular
    file of the recorded size (a FIFO is never waited on, a huge file never
    read) and a record naming another file than its range's (``check=False``
    skips the size and SHA-256 comparison, for a reader that trusts a segment
    it checked before; its content is still bounded by the record's count).
    """
    blob = segment_bytes(directory, record, check=check)
    # far more than a segment can hold (events are at most MAX_EVENT_BYTES, with slack
    # for an older body's encoding): a blob that inflates past it is not a segment
    most = record.events * 4 * (MAX_EVENT_BYTES + 1)
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(blob, most)
        if inflate.unconsumed_tail:
            raise Unavailable(f"archive segment {record.file} inflates past {most} bytes")
        if not inflate.eof:
            raise zlib.error("incomplete or truncated stream")
    except zlib.error as exc:
        raise Unavailable(f"archive segment {record.file} does not decompress: {exc}") from exc
    bodies = raw.split(b"\n")
    if bodies and bodies[-1] == b"":
        bodies.pop()
    if len(bodies) != record.events:
        raise Unavailable(
            f"archive segment {record.file} holds {len(bodies)} events, its record says"
            f" {record.events}"
        )
    return bodies


def segment_bytes(directory: Path, record: ArchiveRecord, *, check: bool = True) -> bytes:
    """A recorded segment's file as it is on disk (compressed), refused as
    :func:`read_segment` refuses it: a regular file (opened without blocking, so a FIFO
    answers at once) named by its range, of the recorded size and SHA-256 (``check``)."""
    if record.file != segment_name(record.first_seq, record.last_seq):
        raise Unavailable(
            f"archive record of seqs {record.first_seq}..{record.last_seq} names the file"
            f" {record.file[:80]!r}, not {segment_name(record.first_seq, record.last_seq)}"
        )
    blob = _read_regular(directory / record.file, record, check)
    if check and hashlib.sha256(blob).hexdigest() != record.sha256:
        raise Unavailable(f"archive segment {record.file} does not match its record")
    return blob


def _read_regular(path: Path, record: ArchiveRecord, check: bool) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unavailable(f"archive segment {record.file} cannot be read: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unavailable(f"archive segment {record.file} is not a regular file")
        if check and info.st_size != record.bytes:
            raise Unavailable(f"archive segment {record.file} does not match its record")
        size = info.st_size
        chunks: list[bytes] = []
        while size > 0:
            chunk = os.read(fd, min(size, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise Unavailable(f"archive segment {record.file} cannot be read: {exc.strerror}") from exc
    finally:
        os.close(fd)


class ArchiveSet:
    """The recorded segments of one data dir, read on demand (the last one cached).

    The set is fixed for the life of the object: a compaction step that records
    a segment replaces the store's set with :meth:`extended`, so a reader holding
    the old one sees a consistent (if older) cut.
    """

    def __init__(self, data_dir: Path, records: list[ArchiveRecord]) -> None:
        self.directory = archive_dir(data_dir)
        self.records = records
        self._cached: tuple[int, list[bytes]] | None = None

    def extended(self, record: ArchiveRecord) -> ArchiveSet:
        """A new set with ``record`` appended (the cached segment carries over)."""
        grown = ArchiveSet(self.directory.parent, [*self.records, record])
        grown._cached = self._cached
        return grown

    @property
    def last_seq(self) -> int:
        """The last archived seq (0: nothing archived)."""
        return self.records[-1].last_seq if self.records else 0

    def _bodies(self, index: int) -> list[bytes]:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        bodies = read_segment(self.directory, self.records[index])
        self._cached = (index, bodies)
        return bodies

    def iter_after(self, from_seq: int) -> Iterator[tuple[int, bytes]]:
        """``(seq, body)`` of every archived event after ``from_seq``, in seq order."""
        for index, record in enumerate(self.records):
            if record.last_seq <= from_seq:
                continue
            bodies = self._bodies(index)
            start = max(0, from_seq + 1 - record.first_seq)
            for offset in range(start, len(bodies)):
                yield record.first_seq + offset, bodies[offset]

    def read(
        self, from_seq: int, stream: str | None, types: Sequence[str] | None, limit: int
    ) -> list[tuple[int, bytes]]:
        """Up to ``limit`` archived events after ``from_seq``, filtered like a live read."""
        wanted = set(types) if types else None
        rows: list[tuple[int, bytes]] = []
        if limit <= 0:
            return rows
        for seq, body in self.iter_after(from_seq):
            if stream is not None or wanted is not None:
                head = _decode_head(body)
                if stream is not None and head.stream != stream:
                    continue
                if wanted is not None and head.type not in wanted:
                    continue
            rows.append((seq, body))
            if len(rows) >= limit:
                break
        return rows

    def body_of(self, seq: int) -> bytes | None:
        """The archived body at ``seq`` (None when no segment holds it)."""
        for index, record in enumerate(self.records):
            if record.first_seq <= seq <= record.last_seq:
                return self._bodies(index)[seq - record.first_seq]
        return None
