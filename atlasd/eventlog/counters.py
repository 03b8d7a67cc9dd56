"""What the store has done since it opened: appends by outcome, groups, commit time.

Plain counters updated on the event loop once per group (never per event in
the writer thread); :meth:`AppendCounters.snapshot` is what ``status`` carries
and what ``atlasd metrics`` exposes.
"""

from __future__ import annotations

import bisect

from atlasd.errors import AtlasdError
from atlasd.reports import CountersSnapshot

__all__ = ["COMMIT_BUCKETS_S", "AppendCounters", "CountersSnapshot"]

#: Upper bounds (seconds) of the commit latency histogram's buckets; +Inf is implied.
COMMIT_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class AppendCounters:
    """Mutable counters, owned by the store and touched on its event loop only."""

    __slots__ = ("_buckets", "_seconds", "appended", "duplicates", "groups", "refused")

    def __init__(self) -> None:
        self.appended = 0
        self.duplicates = 0
        self.groups = 0
        self.refused: dict[str, int] = {}
        self._buckets = [0] * (len(COMMIT_BUCKETS_S) + 1)
        self._seconds = 0.0

    def record_appends(self, appended: int, duplicates: int) -> None:
        """A group's (or a streamed append's) events: stored, and answered as duplicates."""
        self.appended += appended
        self.duplicates += duplicates

    def refuse(self, error: AtlasdError, events: int) -> None:
        self.refused[error.code] = self.refused.get(error.code, 0) + events

    def record_commit(self, seconds: float) -> None:
        self.groups += 1
        self._seconds += seconds
        self._buckets[bisect.bisect_left(COMMIT_BUCKETS_S, seconds)] += 1

    def snapshot(self) -> CountersSnapshot:
        return CountersSnapshot(
            appended=self.appended,
            duplicates=self.duplicates,
            refused=dict(self.refused),
            groups=self.groups,
            commit_bounds=list(COMMIT_BUCKETS_S),
            commit_buckets=list(self._buckets),
            commit_seconds_sum=self._seconds,
        )
