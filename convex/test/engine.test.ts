/**
 * The engine's order rules beyond the shared vectors: one origin's events
 * fold in seq order, origins interleave by arrival, and a late event whose
 * row is too busy to re-fold in place is left to a rebuild of its view.
 */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import type { Id } from "../functions/_generated/dataModel";
import { foldOrder, REFOLD_MAX_EVENTS, type StoredEvent } from "../functions/lib/engine";
import type { Envelope } from "../functions/lib/envelope";
import { backend, envelopes, post, TOKEN, uuid, viewRows, type Backend, type VectorEvent } from "./helpers";

const A = "0190abab-0000-7000-8000-00000000000a";
const B = "0190abab-0000-7000-8000-00000000000b";

beforeEach(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
});
afterEach(() => {
  vi.useRealTimers();
  delete process.env.ATLASD_INGEST_TOKEN;
});

function stored(origin: string, seq: number, arrival: number): StoredEvent {
  return {
    _id: `${origin}:${seq}` as Id<"events">, arrival, origin, seq,
    event_id: uuid(), type: "X", data: {}, recorded_at: 0,
  };
}

async function send(t: Backend, origin: string, events: Envelope[]): Promise<void> {
  const response = await post(t, { origin, events });
  expect(response.status).toBe(200);
  expect(((await response.json()) as { rejected: unknown[] }).rejected).toEqual([]);
}

test("a late event folds where its origin's next event arrived; origins interleave by arrival", () => {
  const order = foldOrder([stored(A, 3, 20), stored(B, 1, 25), stored(A, 1, 10), stored(A, 2, 30)]);
  expect(order.map((e) => `${e.origin === A ? "A" : "B"}${e.seq}`)).toEqual(["A1", "A2", "A3", "B1"]);
});

test("two origins writing one row: the late event of one re-folds it in that origin's seq order", async () => {
  const t = backend();
  const task = (status: string): VectorEvent => ({
    stream: "build:x", type: "TaskStatusChanged", event_id: uuid(), recorded_at: 100,
    data: { build_id: "x", task_id: "t", status },
  });
  const fromA = envelopes(A, [task("pending"), task("running"), task("done")]);
  const fromB = envelopes(B, [task("failed")]);
  await send(t, A, [fromA[0]!, fromA[2]!]);
  await send(t, B, fromB);
  await send(t, A, [fromA[1]!]); // late: below A's seq 3
  const [row] = await viewRows(t, "tasks");
  // A's events in seq order, then B's (it arrived after A's seq 3).
  expect(row).toMatchObject({ status: "failed", attempts: 1 });
  const [build] = await viewRows(t, "builds");
  expect(build).toMatchObject({ tasks_total: 1, tasks_failed: 1, tasks_done: 0 });
});

test("a late event on a row with more stored events than a re-fold reads is left to a rebuild of its view", async () => {
  vi.useFakeTimers();
  const t = backend();
  const downloads: VectorEvent[] = Array.from({ length: REFOLD_MAX_EVENTS + 2 }, (_, i) => ({
    stream: "asset:busy", type: i === 0 ? "AssetSaved" : "AssetDownloaded", event_id: uuid(), recorded_at: 1000 + i,
    data: i === 0 ? { asset_id: "busy", name: "Busy", category: "doc", tags: [] } : { asset_id: "busy" },
  }));
  const events = envelopes(A, downloads);
  await send(t, A, events.slice(0, 400));
  await send(t, A, events.slice(401, 800));
  await send(t, A, events.slice(800));
  await send(t, A, [events[400]!]); // late, on a row with more than REFOLD_MAX_EVENTS stored events
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  // As a replay: every download counted.
  const [asset] = await viewRows(t, "assets");
  expect(asset).toMatchObject({ name: "Busy", downloads: REFOLD_MAX_EVENTS + 1 });
  const status = await t.run((ctx) => ctx.db.query("rebuilds").collect());
  expect(status.map((r) => [r.views, r.phase])).toEqual([[["assets"], "done"]]);
});
