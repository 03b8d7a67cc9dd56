"""Cost of a ``query`` page at depth: the last page of a 50,000-row view, read by 100.

Target: reading the last page (after 499 ``next`` hops) costs at most 2x the
first page, for creation order, key order and a time column, ascending and
descending. Keyset pages make every page one index seek plus 100 rows; the
baseline line shows what the same last page costs read with OFFSET. Times are the median of several
reads of the same page, through the store (no socket), so they compare the SQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from atlasd.eventlog import EventStore
from atlasd.eventlog.config import StoreConfig
from atlasd.eventlog.projections import QueryParams
from atlasd.events import NewEvent

ROWS = 50_000
PAGE = 100
REPEAT = 30
#: The last page may cost at most this many times the first.
MAX_RATIO = 2.0


def _learning(i: int) -> NewEvent:
    return NewEvent(
        stream=f"learning:l{i:06d}",
        type="LearningRecorded",
        data={"learning_id": f"l{i:06d}", "insight": f"insight {i}", "category": f"c{i % 5}"},
        occurred_at=1_700_000_000_000 + (i * 7919) % 100_000,
    )


async def _page_time(store: EventStore, params: QueryParams) -> float:
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        await store.query_page(params)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _run(data_dir: Path) -> int:
    missed = 0
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        for start in range(0, ROWS, 5000):
            await store.append_batch([_learning(i) for i in range(start, start + 5000)])
        for order_by in (None, "learning_id", "recorded_at"):
            for order in ("asc", "desc"):
                first = QueryParams(view="learnings", limit=PAGE, order=order, order_by=order_by)
                params, pages = first, 1
                while True:
                    page = await store.query_page(params)
                    if page.next is None:
                        break
                    last = params
                    params = QueryParams(
                        view="learnings",
                        limit=PAGE,
                        order=order,
                        order_by=order_by,
                        after=page.next,
                    )
                    pages += 1
                # ``params`` now asks for the final (empty) step; ``last`` for the last full page.
                t_first = await _page_time(store, first)
                t_last = await _page_time(store, last)
                ratio = t_last / t_first
                ok = ratio <= MAX_RATIO
                missed += not ok
                print(
                    f"order_by={order_by or 'row_seq':12} {order:4}  pages={pages}"
                    f"  first={t_first * 1e3:.3f} ms  last={t_last * 1e3:.3f} ms"
                    f"  ratio={ratio:.2f} (target <= {MAX_RATIO}) {'ok' if ok else 'MISSED'}"
                )
    print(f"baseline, the same last page by OFFSET: {_offset_ms(data_dir):.3f} ms")
    return 1 if missed else 0


def _offset_ms(data_dir: Path) -> float:
    """What paging by LIMIT/OFFSET would cost for the last page (it skips every row before)."""
    conn = sqlite3.connect(data_dir / "atlasd.db")
    try:
        sql = "SELECT * FROM view_learnings ORDER BY row_seq LIMIT ? OFFSET ?"
        times = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            conn.execute(sql, (PAGE, ROWS - PAGE)).fetchall()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e3
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="atlasd-bench-") as tmp:
        return asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
