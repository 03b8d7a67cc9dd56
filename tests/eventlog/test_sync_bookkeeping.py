"""The sync cursor and the quarantine, as the sync worker uses them."""

from __future__ import annotations

from pathlib import Path

from atlasd.eventlog import EventStore, NewEvent, Rejection, StoreConfig
from atlasd.eventlog.compact import compact


async def _events(store: EventStore, count: int) -> list[str]:
    results = await store.append_batch(
        [NewEvent(stream="s", type="T", data={"i": i}) for i in range(count)], recorded_at=1000
    )
    return [r.event_id for r in results]


async def test_new_log_has_everything_pending(store: EventStore) -> None:
    """With nothing synced, every event is pending and the oldest is the first."""
    assert (await store.sync.state()).oldest_pending_ms is None
    await store.append(NewEvent(stream="s", type="T", data={}), recorded_at=5)
    await _events(store, 3)
    state = await store.sync.state()
    assert (state.acked_seq, state.pending, state.oldest_pending_ms, state.rejected) == (0, 4, 5, 0)


async def test_mark_synced_advances_and_quarantines_in_one_step(store: EventStore) -> None:
    """The cursor moves forward only; rejected events are kept with their reason."""
    ids = await _events(store, 5)
    rejection = Rejection(seq=2, event_id=ids[1], code="invalid_value", message="too deep")
    await store.sync.mark_synced(3, [rejection])
    state = await store.sync.state()
    assert (state.acked_seq, state.pending, state.rejected) == (3, 2, 1)
    assert await store.sync.rejected_events() == [rejection]
    await store.sync.mark_synced(1, [])
    assert (await store.sync.state()).acked_seq == 3
    await store.sync.mark_synced(5, [])
    state = await store.sync.state()
    assert (state.pending, state.oldest_pending_ms) == (0, None)


async def test_requeued_events_are_retried_then_resolved(store: EventStore) -> None:
    """Requeued events are retried; delivered ones leave, refused ones stay with the new reason."""
    ids = await _events(store, 4)
    await store.sync.mark_synced(
        4,
        [
            Rejection(seq=1, event_id=ids[0], code="invalid_value", message="a"),
            Rejection(seq=3, event_id=ids[2], code="invalid_value", message="b"),
        ],
    )
    assert await store.sync.events_to_retry(10) == []
    assert await store.sync.requeue_rejected() == 2
    assert [e.seq for e in await store.sync.events_to_retry(10)] == [1, 3]
    assert [e.seq for e in await store.sync.events_to_retry(1)] == [1]
    await store.sync.resolve_retried(
        [ids[0]], [Rejection(seq=3, event_id=ids[2], code="internal", message="still no")]
    )
    assert await store.sync.rejected_events() == [
        Rejection(seq=3, event_id=ids[2], code="internal", message="still no")
    ]
    assert await store.sync.events_to_retry(10) == []
    assert (await store.sync.state()).rejected == 1


async def test_cursor_survives_a_restart(data_dir: Path) -> None:
    """The acked seq and the quarantine are stored with the log."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        ids = await _events(store, 3)
        await store.sync.mark_synced(2, [Rejection(seq=1, event_id=ids[0], code="c", message="m")])
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        state = await store.sync.state()
        assert (state.acked_seq, state.pending, state.rejected) == (2, 1, 1)


async def test_the_quarantine_can_be_listed_a_bounded_number_at_a_time(store: EventStore) -> None:
    """``rejected_events(limit)`` gives the oldest ``limit`` quarantined events only."""
    ids = await _events(store, 5)
    rejections = [
        Rejection(seq=i + 1, event_id=ids[i], code="poison", message=f"no {i}") for i in range(4)
    ]
    await store.sync.mark_synced(5, rejections)
    assert await store.sync.rejected_events(2) == rejections[:2]
    assert await store.sync.rejected_events() == rejections


async def test_a_quarantined_event_that_is_archived_is_still_retried(data_dir: Path) -> None:
    """After a re-origin the log is sent again from its archived start; an archived event the
    remote refuses, once re-queued, comes back for its retry with the live ones, in seq
    order (it is not left flagged in the quarantine forever)."""
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append_batch(
            [NewEvent(stream=f"s{i % 3}", type="note.added", data={"n": i}) for i in range(20)]
        )
        await store.sync.mark_synced(20)
    compact(data_dir, older_than_ms=0, synced_only=True, segment_events=5)
    async with await EventStore.open(StoreConfig(data_dir=data_dir)) as store:
        await store.append(NewEvent(stream="s0", type="note.added", data={"n": 20}))
        assert store.archives.last_seq == 20
        await store.reorigin("restore of a backup")
        by_seq = {event.seq: event for event in await store.read(0)}
        refused = [
            Rejection(seq=seq, event_id=by_seq[seq].event_id, code="invalid", message="no")
            for seq in (7, 21)
        ]
        await store.sync.mark_synced(21, refused)
        assert await store.sync.requeue_rejected() == 2
        retried = await store.sync.events_to_retry(10)
        assert [event.seq for event in retried] == [7, 21]
        assert retried[0] == by_seq[7]
        await store.sync.resolve_retried([by_seq[7].event_id, by_seq[21].event_id])
        assert await store.sync.events_to_retry(10) == []
        assert (await store.sync.state()).rejected == 0
