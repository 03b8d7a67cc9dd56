"""What the event log reports about itself, as ``status`` carries it.

The store fills these in and the daemon's ``status`` (docs/protocol.md) sends
them; clients decode them. They sit below every layer, so a client decoding a
status loads none of the store.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "CHECKING",
    "CapState",
    "CountersSnapshot",
    "IntegrityReport",
    "LineageEntry",
    "ProjectionInfo",
    "Rejection",
]


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """An event the remote refused for good (quarantined), with the remote's reason."""

    seq: int
    event_id: str
    code: str
    message: str


class ProjectionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A projector's stored state: its code version and the last seq it applied."""

    name: str
    version: int
    checkpoint: int


class LineageEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An origin this log had: events up to ``until_seq`` were written under it."""

    origin: str
    until_seq: int
    #: When the log left this origin (ms since the epoch).
    ended_at: int
    #: Why: ``restore`` of a backup, or ``seq_conflict`` found by the sync.
    reason: str


class CountersSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The append counters at one moment (since the daemon started)."""

    #: Events stored (not duplicates).
    appended: int
    #: Events answered as duplicates of a stored one.
    duplicates: int
    #: Events refused, by error code.
    refused: dict[str, int]
    #: Group commits (one transaction each).
    groups: int
    #: Upper bounds of the commit time buckets, in seconds (``COMMIT_BUCKETS_S``).
    commit_bounds: list[float]
    #: Commits per bucket: ``commit_buckets[i]`` took at most ``commit_bounds[i]``
    #: seconds (not cumulative; one more item counts the slower ones).
    commit_buckets: list[int]
    commit_seconds_sum: float

    def __post_init__(self) -> None:
        # a histogram needs one count per bound and one for the slower commits (a
        # decoded answer that has not is refused as the decoder's error, not later)
        if self.commit_buckets and len(self.commit_buckets) != len(self.commit_bounds) + 1:
            raise ValueError(
                f"commit_buckets has {len(self.commit_buckets)} counts for"
                f" {len(self.commit_bounds)} bounds"
            )


class CapState(msgspec.Struct, frozen=True, kw_only=True):
    """How close the database is to its size cap (the rule: ``eventlog.capacity``)."""

    #: The cap (``max_db_bytes``).
    bytes: int
    #: The database file plus its WAL.
    used: int
    #: ``used / bytes``, rounded to 4 places.
    share: float
    #: True from ``CAP_WARN`` on.
    alert: bool
    level: Literal["ok", "warn", "fail"]


class IntegrityReport(msgspec.Struct, frozen=True, kw_only=True):
    """The start-up page check: ``ok``, ``corrupt`` (with the problems found) or
    ``unchecked`` (and why); ``checking`` while it runs."""

    state: Literal["checking", "ok", "corrupt", "unchecked"]
    problems: list[str] = []
    ms: float = 0.0


class _Checking(IntegrityReport, frozen=True, kw_only=True, omit_defaults=True):
    """Sent as ``{"state": "checking"}`` alone: there is nothing to report yet."""


#: The report while the check runs.
CHECKING: IntegrityReport = _Checking(state="checking")
