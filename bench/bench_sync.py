"""Sync benchmarks: the worker's own ceiling, the Convex double, recovery time.

Figures, each with its baseline measured in the same run:

- drain a 200k-event backlog into the minimal local ingest server (a separate
  process, dedup by id, no Convex logic), the worker in a child process of
  its own: events/s and the child's peak RSS (VmHWM). Targets: >= 20k
  events/s, peak RSS < 120 MB. Baseline: the same server fed the very same
  events (the whole backlog) in batches of the same size by a bare HTTP loop
  (no worker; only its POSTs timed), i.e. the transport's ceiling; the ratio
  says how much of it the worker reaches;
- the same worker into the Convex double (convex-test behind HTTP). The double
  scans tables on every indexed read, so a smaller backlog is measured: the
  double is the limit there, not the worker. A drain that fails, or leaves
  the double without every event, fails the bench;
- recovery: the remote refuses connections long enough for the backoff to
  reach its cap, then comes back; printed: how long until the first batch
  lands (bounded by the backoff cap, with full jitter anywhere in [0, cap]);
- a flaky network: a 20,000-event backlog drained through the fault proxy
  with one POST in five failing (a reset, a 500, a 429, a slow answer in
  turn), beside the same drain through the proxy without faults; printed:
  both rates, the time the faults added and the most they may impose
  (each Retry-After, each stall, one first backoff step per other failure).
  Target: the added time stays within that bound (plus 2 s of scheduling).

``python -m bench.bench_sync [--quick]``; a missed target prints
"TARGET MISSED" and makes ``main`` return 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

BACKLOG = 200_000
DOUBLE_BACKLOG = 3_000
QUICK_BACKLOG = 20_000
TARGET_RATE = 20_000.0
TARGET_RSS_MB = 120.0
TOKEN = "bench-token"
# Recovery: how long the remote stays down, and the backoff settings used.
DOWN_S = 6.0
RECOVERY_BASE_S = 0.5
RECOVERY_CAP_S = 4.0
FLAKY_BACKLOG = 20_000


def _note(i: int) -> Any:
    from atlasd.eventlog import NewEvent

    # ~200 bytes of payload, a few streams: the shape of tool telemetry.
    return NewEvent(
        stream=f"build:b{i % 50}",
        type="ExecutionLogged",
        data={
            "build_id": f"b{i % 50}",
            "task_id": f"t{i % 7}",
            "agent": "coder",
            "model": "m-1",
            "prompt": "p" * 80,
            "response": "r" * 80,
            "gates_passed": True,
            "duration_ms": i % 5000,
        },
    )


async def _fill(data_dir: Path, count: int) -> None:
    from atlasd.eventlog import EventStore, StoreConfig

    store = await EventStore.open(StoreConfig(data_dir=data_dir, synchronous="NORMAL"))
    try:
        for start in range(0, count, 5000):
            await store.append_batch([_note(i) for i in range(start, min(count, start + 5000))])
    finally:
        await store.close()


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _drain(data_dir: Path, url: str, token: str, batch: int) -> dict[str, Any]:
    """Child process: open the store, run the worker until the backlog is acked."""
    from atlasd.config import Secret, SyncConfig
    from atlasd.eventlog import EventStore, StoreConfig
    from atlasd.sync.worker import SyncWorker

    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    try:
        target = store.last_seq
        config = SyncConfig(ingest_url=url, token=Secret(token), batch_max_events=batch)
        worker = SyncWorker(store, config)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while (await store.sync.state()).acked_seq < target:  # noqa: ASYNC110 - a DB cursor
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        status = await worker.status()
    finally:
        await store.close()
    return {
        "events": target,
        "seconds": elapsed,
        "vmhwm_mb": _vmhwm_mb(),
        "status": msgspec.to_builtins(status),
    }


def _child_drain(data_dir: Path, url: str, token: str, batch: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bench_sync", "--drain", str(data_dir), url, token]
    out = subprocess.run(
        [*command, str(batch)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def _ingest_server() -> Iterator[str]:
    """The minimal ingest server in a process of its own; yields its ingest URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.ingest_server", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip().split("=")[1])
        yield f"http://127.0.0.1:{port}/atlasd/ingest"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def _raw_baseline(data_dir: Path, url: str, batch: int) -> tuple[int, float]:
    """(events sent, events/s) of a bare loop POSTing the very events the worker drains,
    in batches of the same size: the whole backlog, read a page at a time; only the POSTs
    are timed (no worker, no cursor)."""
    from atlasd.eventlog import EventStore, StoreConfig
    from atlasd.sync.remote import ConvexRemote

    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    sent = 0
    elapsed = 0.0
    try:
        origin = store.origin
        async with ConvexRemote(url, TOKEN, 30.0) as remote:
            after = 0
            while rows := await store.read_raw(after, 20 * batch):
                after = rows[-1][0]
                started = time.perf_counter()
                for i in range(0, len(rows), batch):
                    await remote.ingest(origin, [raw for _, raw in rows[i : i + batch]])
                elapsed += time.perf_counter() - started
                sent += len(rows)
    finally:
        await store.close()
    return sent, sent / elapsed


async def _recovery(data_dir: Path, url: str) -> tuple[float, int]:
    """Seconds from the remote's return to the first batch landing; failures meanwhile."""
    from atlasd.config import Secret, SyncConfig
    from atlasd.eventlog import EventStore, StoreConfig
    from atlasd.sync.worker import SyncWorker
    from tests.sync.fault_proxy import FaultProxy

    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    try:
        await store.append_batch([_note(i) for i in range(100)])
        async with FaultProxy(url) as proxy:
            await proxy.refuse()
            config = SyncConfig(
                ingest_url=proxy.url_for(url),
                token=Secret(TOKEN),
                backoff_base_s=RECOVERY_BASE_S,
                backoff_cap_s=RECOVERY_CAP_S,
            )
            worker = SyncWorker(store, config)
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(DOWN_S)
            failures = (await worker.status()).failures
            await proxy.accept()
            back = time.perf_counter()
            while (await store.sync.state()).acked_seq == 0:  # noqa: ASYNC110 - a DB cursor
                await asyncio.sleep(0.01)
            recovered = time.perf_counter() - back
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await store.close()
    return recovered, failures


async def _flaky_drain(data_dir: Path, url: str, faulty: bool) -> tuple[float, float]:
    """Seconds to drain the backlog through the proxy (faults or none), and the faults' bound."""
    from atlasd.config import Secret, SyncConfig
    from atlasd.eventlog import EventStore, StoreConfig
    from atlasd.sync.worker import SyncWorker
    from tests.sync.fault_proxy import FaultProxy
    from tests.sync.flaky import HANG_S, imposed_wait_s, one_in_five

    store = await EventStore.open(StoreConfig(data_dir=data_dir))
    try:
        async with FaultProxy(url, hang_s=HANG_S) as proxy:
            if faulty:
                proxy.faults.extend(one_in_five(10_000))
            # The shipped defaults: the largest safe batch, backoff 1 s doubling to 60 s.
            config = SyncConfig(ingest_url=proxy.url_for(url), token=Secret(TOKEN))
            worker = SyncWorker(store, config)
            started = time.perf_counter()
            task = asyncio.create_task(worker.run())
            while (await store.sync.state()).acked_seq < store.last_seq:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            imposed = imposed_wait_s(proxy, config.backoff_base_s)
    finally:
        await store.close()
    return elapsed, imposed


def _flaky_figure(root: Path) -> bool:
    """Print the flaky-network figure; False when the target is missed."""
    asyncio.run(_fill(root / "flaky", FLAKY_BACKLOG))
    runs = {}
    for faulty in (False, True):
        data_dir = root / f"flaky-{faulty}"
        shutil.copytree(root / "flaky", data_dir)
        with _ingest_server() as url:
            runs[faulty] = asyncio.run(_flaky_drain(data_dir, url, faulty))
        shutil.rmtree(data_dir)
    (clean, _), (flaky, imposed) = runs[False], runs[True]
    added = flaky - clean
    print(
        f"flaky network, {FLAKY_BACKLOG:,} events, one POST in five failing: "
        f"{FLAKY_BACKLOG / flaky:,.0f} events/s ({flaky:.2f} s); fault-free through the same "
        f"proxy {FLAKY_BACKLOG / clean:,.0f} events/s ({clean:.2f} s); the faults added "
        f"{added:.2f} s, at most {imposed:.2f} s imposed by them"
    )
    if added > imposed + 2.0:
        print(
            f"TARGET MISSED: the faults added {added:.2f} s, over the {imposed:.2f} s they impose"
        )
        return False
    return True


def _double_run(data_dir: Path) -> tuple[float, int]:
    from tests.support.convex_double import ConvexDouble

    origin = _origin(data_dir)
    with ConvexDouble() as double:
        result = _child_drain(data_dir, double.ingest_url, double.token, 256)
        held = int(double.status(origin)["events"])
    return result["events"] / result["seconds"], held


def _origin(data_dir: Path) -> str:
    from atlasd.eventlog import EventStore, StoreConfig

    async def read() -> str:
        store = await EventStore.open(StoreConfig(data_dir=data_dir))
        try:
            return store.origin
        finally:
            await store.close()

    return asyncio.run(read())


def main(argv: list[str]) -> int:
    if argv[:1] == ["--drain"]:
        data_dir, url, token, batch = argv[1:5]
        print(json.dumps(asyncio.run(_drain(Path(data_dir), url, token, int(batch)))))
        return 0
    quick = "--quick" in argv
    backlog = QUICK_BACKLOG if quick else BACKLOG
    missed: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="bsync-", dir="/tmp"))
    try:
        started = time.perf_counter()
        asyncio.run(_fill(root / "backlog", backlog))
        print(f"backlog: {backlog} events written in {time.perf_counter() - started:.1f} s")

        for batch in (256, 600):
            data_dir = root / f"drain-{batch}"
            shutil.copytree(root / "backlog", data_dir)
            # A fresh server for each run, so every event is stored, none deduplicated.
            with _ingest_server() as url:
                result = _child_drain(data_dir, url, TOKEN, batch)
            with _ingest_server() as url:
                sent, baseline = asyncio.run(_raw_baseline(root / "backlog", url, batch))
            if sent != result["events"]:
                raise RuntimeError(
                    f"the baseline sent {sent} events, the worker {result['events']}"
                )
            rate = result["events"] / result["seconds"]
            print(
                f"drain into the local ingest server, batch {batch}: {rate:,.0f} events/s "
                f"({result['events']} in {result['seconds']:.2f} s); peak RSS "
                f"{result['vmhwm_mb']:.1f} MB; baseline bare HTTP loop {baseline:,.0f} events/s; "
                f"ratio {rate / baseline:.2f}"
            )
            if rate < TARGET_RATE:
                print(f"TARGET MISSED: {rate:,.0f} < {TARGET_RATE:,.0f} events/s (batch {batch})")
                missed.append("rate")
            if result["vmhwm_mb"] >= TARGET_RSS_MB:
                print(f"TARGET MISSED: peak RSS {result['vmhwm_mb']:.1f} >= {TARGET_RSS_MB} MB")
                missed.append("rss")
            shutil.rmtree(data_dir)

        with _ingest_server() as url:
            recovered, failures = asyncio.run(_recovery(root / "recovery", url))
        print(
            f"recovery: first batch landed {recovered:.2f} s after the remote came back "
            f"(down {DOWN_S:.0f} s, {failures} failed rounds; bound: backoff cap "
            f"{RECOVERY_CAP_S:.0f} s, full jitter)"
        )
        if recovered > RECOVERY_CAP_S + 1.0:
            print(f"TARGET MISSED: recovery {recovered:.2f} s over the cap {RECOVERY_CAP_S} s")
            missed.append("recovery")
        if not _flaky_figure(root):
            missed.append("flaky")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise

    try:
        # A drain that fails (no Node, the double refusing, events missing) fails the bench.
        count = min(DOUBLE_BACKLOG, backlog)
        asyncio.run(_fill(root / "double", count))
        rate, held = _double_run(root / "double")
        print(
            f"drain into the Convex double: {rate:,.0f} events/s for {count} events "
            f"(remote holds {held}); the double (convex-test, table scans) is the limit, "
            f"not the worker; {BACKLOG:,} events would take ~{BACKLOG / rate / 60:,.0f} min "
            "at this rate and slower as tables grow"
        )
        if held != count:
            print(f"TARGET MISSED: the Convex double holds {held} of the {count} events drained")
            missed.append("double")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
