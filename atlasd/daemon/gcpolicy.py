"""The daemon's garbage-collector policy: fewer, shorter collections under load.

CPython's cyclic collector runs a young collection every 700 net container
allocations and, every so often, a full one over the whole heap. Under many
concurrent appends the daemon allocates a few containers per request that
live until their group commits, so young collections come every couple of
groups; and a full collection walks every object alive, the tens of
thousands made at start-up (modules, packs, compiled schemas) included: tens
of ms with the GIL held, during which no answer goes out and no group commits
(measured in ``docs/eventlog.md``, "Socket path").

So, once started: collect once, then *freeze* what is alive (start-up state
lives as long as the process; later full collections skip it), and raise the
young threshold so that request objects, which reference counting frees,
rarely meet a collection at all. Cyclic garbage (an exception's traceback, a
closed connection's task) is still collected, only in larger steps.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

#: Net container allocations between young collections (CPython's default is 700).
YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Collect, freeze the survivors (start-up state), raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
