import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { AtlasdClient, DaemonUnreachable, SlowConsumer, type AtlasEvent } from "atlasd-client";

import { Daemon } from "./support/daemon.js";

describe("AtlasdClient against a running daemon", () => {
  let daemon: Daemon;
  let client: AtlasdClient;

  before(async () => {
    daemon = await new Daemon().start();
    client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
  });

  after(async () => {
    client.close();
    await daemon.remove();
  });

  test("connect opens the connection and ping answers the daemon's origin", async () => {
    assert.equal(client.connected, true);
    const pong = await client.ping();
    assert.match(pong.origin, /^[0-9a-f-]{36}$/);
    assert.equal(typeof pong.version, "string");
  });

  test("append resolves to the stored position with a client-made event id and call-time occurred_at", async () => {
    const before = Date.now();
    const result = await client.append({ stream: "tool:a", type: "Seen", data: { n: 1 } });
    assert.equal(result.spooled, false);
    assert.equal(result.version, 1);
    assert.equal(result.duplicate, false);
    assert.ok(typeof result.seq === "number" && result.seq >= 1);
    const { events } = await client.read({ fromSeq: result.seq! - 1, limit: 1 });
    const event = events[0]!;
    assert.equal(event.event_id, result.eventId);
    assert.match(event.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.ok(event.occurred_at! >= before && event.occurred_at! <= Date.now());
  });

  test("an append repeated with the same event id is a duplicate, not a second event", async () => {
    const first = await client.append({ stream: "tool:dup", type: "Seen", data: { n: 1 } });
    const again = await client.append({ stream: "tool:dup", type: "Seen", data: { n: 1 }, eventId: first.eventId });
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, first.seq);
  });

  test("an explicit occurredAt is kept on the stored event", async () => {
    const result = await client.append({ stream: "tool:t", type: "Seen", data: {}, occurredAt: 1_700_000_000_000 });
    const { events } = await client.read({ fromSeq: result.seq! - 1, limit: 1 });
    assert.equal(events[0]!.occurred_at, 1_700_000_000_000);
  });

  test("appendBatch appends every event in order, in one transaction", async () => {
    const results = await client.appendBatch([
      { stream: "tool:b", type: "One", data: {} },
      { stream: "tool:b", type: "Two", data: {} },
    ]);
    assert.deepEqual(results.map((r) => r.version), [1, 2]);
    assert.equal(results[1]!.seq, results[0]!.seq! + 1);
  });

  test("10,000 appends pipelined on one connection all resolve with distinct, consecutive seqs", async () => {
    const results = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => client.append({ stream: `pipe:${i % 10}`, type: "P", data: { i } })),
    );
    const seqs = results.map((r) => r.seq!).sort((a, b) => a - b);
    assert.equal(new Set(seqs).size, 10_000);
    assert.equal(seqs.at(-1)! - seqs[0]!, 9_999);
    const byStream = new Map<string, number[]>();
    results.forEach((r, i) => {
      const versions = byStream.get(`pipe:${i % 10}`) ?? [];
      versions.push(r.version!);
      byStream.set(`pipe:${i % 10}`, versions);
    });
    for (const versions of byStream.values()) assert.deepEqual(versions, versions.map((_, k) => k + 1));
  });

  test("read pages through events with lastSeq", async () => {
    const first = await client.read({ limit: 2 });
    assert.equal(first.events.length, 2);
    const second = await client.read({ fromSeq: first.lastSeq, limit: 2 });
    assert.equal(second.events[0]!.seq, first.lastSeq + 1);
  });

  test("query answers a view's rows and a null next from a daemon that does not page", async () => {
    await client.append({ stream: "build:q1", type: "BuildStarted", data: { build_id: "q1", prd_id: "p", prd_name: "n" } });
    const page = await client.query("builds", { filter: { build_id: "q1" } });
    assert.equal(page.rows.length, 1);
    assert.equal(page.rows[0]!["prd_name"], "n");
    assert.ok(page.next === null || typeof page.next === "string");
    assert.deepEqual(await client.queryAll("builds", { filter: { build_id: "q1" } }), page.rows);
  });

  test("status reports the log's counts", async () => {
    const status = await client.status();
    assert.ok(status.last_seq > 0);
    assert.equal(typeof status.sync.state, "string");
  });

  test("subscribe yields catch-up then live events, and break closes it", async () => {
    const marker = `sub:${Date.now()}`;
    await client.append({ stream: marker, type: "Old", data: {} });
    const seen: AtlasEvent[] = [];
    const subscription = client.subscribe({ stream: marker });
    await subscription.ready;
    const live = client.append({ stream: marker, type: "New", data: {} });
    for await (const event of subscription) {
      seen.push(event);
      if (seen.length === 2) break;
    }
    await live;
    assert.deepEqual(seen.map((e) => e.type), ["Old", "New"]);
    assert.deepEqual(await subscription.next(), { value: undefined, done: true });
  });

  test("an aborted signal ends a subscription waiting for events", async () => {
    const controller = new AbortController();
    const subscription = client.subscribe({ fromSeq: "end", signal: controller.signal });
    await subscription.ready;
    const waiting = subscription.next();
    controller.abort();
    assert.deepEqual(await waiting, { value: undefined, done: true });
  });

  test("watch yields the rows now and again when they change", async () => {
    const watch = client.watch("builds", { filter: { build_id: "w1" } });
    const iterator = watch[Symbol.asyncIterator]();
    const now = await iterator.next();
    assert.deepEqual(now.value, []);
    await client.append({ stream: "build:w1", type: "BuildStarted", data: { build_id: "w1", prd_id: "p", prd_name: "n" } });
    const changed = await iterator.next();
    assert.equal(changed.value![0]!["build_id"], "w1");
    watch.close();
  });

  test("calls on a closed client reject with DaemonUnreachable", async () => {
    const other = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    other.close();
    await assert.rejects(other.ping(), DaemonUnreachable);
  });
});

describe("a subscriber that falls behind", () => {
  let daemon: Daemon;

  before(async () => {
    const root = mkdtempSync("/tmp/atn-slow-");
    writeFileSync(join(root, "atlasd.toml"), "subscriber_buffer = 50\n");
    daemon = await new Daemon(root, { ATLASD_CONFIG: join(root, "atlasd.toml") }).start();
  });

  after(async () => {
    await daemon.remove();
  });

  test("holds bounded lines, then gets SlowConsumer after a gap-free prefix, and the iteration ends", async () => {
    const client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    const subscription = client.subscribe({ fromSeq: "end" });
    await subscription.ready;
    const pad = "x".repeat(4000);
    for (let start = 0; start < 3000; start += 100) {
      await client.appendBatch(Array.from({ length: 100 }, (_, i) => ({ stream: "slow", type: "T", data: { i: start + i, pad } })));
    }
    const seqs: number[] = [];
    const error = await (async () => {
      try {
        for await (const event of subscription) seqs.push(event.seq);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    assert.ok(error instanceof SlowConsumer, String(error));
    assert.ok(seqs.length < 3000);
    assert.deepEqual(seqs, seqs.map((_, k) => k + 1));
    assert.deepEqual(await subscription.next(), { value: undefined, done: true });
    client.close();
  });
});
