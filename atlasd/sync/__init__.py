"""Background sync of the event log to Convex (docs/sync.md).

- :mod:`atlasd.sync.remote`: the ingest endpoint; the only module importing httpx.
- :mod:`atlasd.sync.batching`: cutting the backlog into batches by count and bytes.
- :mod:`atlasd.sync.backoff`: exponential backoff with full jitter.
- :mod:`atlasd.sync.worker`: :class:`~atlasd.sync.worker.SyncWorker`, the loop the
  daemon runs.

Nothing is imported here so that a daemon with sync disabled never loads httpx.
"""

__all__: list[str] = []
