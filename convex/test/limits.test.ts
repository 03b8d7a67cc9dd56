/**
 * The default batch fits one Convex transaction for the worst event mix,
 * and the generated api is up to date. Transaction limits are on, with
 * the index range a real backend reads for each replace/patch counted
 * (double/write-ranges.mjs). (The public surface is pinned in
 * read-auth.test.ts.)
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, test } from "vitest";
import { DEFAULT_MAX_EVENTS } from "../functions/lib/limits";
import type { Envelope } from "../functions/lib/envelope";
import { GENESIS_HASH } from "../functions/lib/canonical";
import { backend, chainHash, modules, post, TOKEN, uuid, type Backend } from "./helpers";

const ORIGIN = "0190eeee-0000-7000-8000-000000000001";

beforeAll(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
  process.env.ATLASD_INGEST_MAX_EVENTS = "100000";
});
afterAll(() => {
  delete process.env.ATLASD_INGEST_TOKEN;
  delete process.env.ATLASD_INGEST_MAX_EVENTS;
});

/**
 * Each event a TaskStatusChanged of its own build and task, seqs `gap` apart
 * from `first`: per event one range of positions, one event_id lookup, the
 * build and the task row; when those rows exist, one more range for each
 * replace. Only seq 1 has a predecessor to check its hash against (genesis).
 */
function worstBatch(count: number, gap: number, first = 1, version = 1): Envelope[] {
  return Array.from({ length: count }, (_, i) => {
    const content = {
      seq: first + i * gap, event_id: uuid(), stream: `build:b${i}`, version, type: "TaskStatusChanged",
      data: { build_id: `b${i}`, task_id: `t${i}`, status: "running" }, meta: {},
      recorded_at: 1_000 + i, origin: ORIGIN,
    };
    return { ...content, hash: content.seq === 1 ? chainHash(GENESIS_HASH, content) : "0".repeat(64) };
  });
}

/** Index ranges per event updating existing rows, in seq order and late, and per batch. */
const RANGES_PER_EVENT = 7;
const RANGES_PER_LATE_EVENT = 8;
const RANGES_PER_BATCH = 3; // the origin's record, the high-water scan, the record's patch
const RANGES_PER_LATE_BATCH = 5; // and the origin's highest seq, the late events' stored rows

/** Store `count` worst-mix events, then post `count` more that update every row they made. */
async function updateBatch(t: Backend, count: number): Promise<Response> {
  const first = await post(t, { origin: ORIGIN, events: worstBatch(count, 10) });
  expect(first.status).toBe(200);
  return post(t, { origin: ORIGIN, events: worstBatch(count, 10, 5, 2) });
}

/**
 * Store `count` worst-mix events and one far above them, then post `count` late
 * events (below the origin's highest seq) updating every row: each re-folds its
 * rows. Their seqs sit two above a stored one, so no stored predecessor's hash
 * applies to them.
 */
async function lateBatch(t: Backend, count: number): Promise<Response> {
  const stored = worstBatch(count, 10);
  const last = { ...stored[0]!, seq: 10 * count + 5, event_id: uuid(), data: { build_id: "z", task_id: "z", status: "done" }, hash: "0".repeat(64) };
  expect((await post(t, { origin: ORIGIN, events: [...stored, last] })).status).toBe(200);
  const late = stored.map((e) => ({ ...e, seq: e.seq + 2, event_id: uuid(), data: { ...e.data, status: "done" }, hash: "0".repeat(64) }));
  return post(t, { origin: ORIGIN, events: late });
}

test("the default batch of the worst event mix fits one transaction", async () => {
  const t = backend();
  const response = await post(t, { origin: ORIGIN, events: worstBatch(DEFAULT_MAX_EVENTS, 10) });
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ accepted: DEFAULT_MAX_EVENTS, high_water: 1 });
});

test("the default batch of late events, each re-folding its row, fits one transaction with 10% headroom", async () => {
  const needed = DEFAULT_MAX_EVENTS * RANGES_PER_LATE_EVENT + RANGES_PER_LATE_BATCH;
  expect(needed).toBeLessThanOrEqual(4096 * 0.9);
  const t = backend();
  const response = await lateBatch(t, DEFAULT_MAX_EVENTS);
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ accepted: DEFAULT_MAX_EVENTS });
  const tasks = await t.run((ctx) => ctx.db.query("view_rows").withIndex("by_view_time", (q) => q.eq("view", "tasks")).take(3));
  expect(tasks.map((doc) => (doc.row as { status: string }).status)).toEqual(["done", "done", "done"]);
});

test("the default batch fits when every event updates rows that exist, with 10% headroom", async () => {
  const needed = DEFAULT_MAX_EVENTS * RANGES_PER_EVENT + RANGES_PER_BATCH;
  expect(needed).toBeLessThanOrEqual(4096 * 0.9);
  const response = await updateBatch(backend(), DEFAULT_MAX_EVENTS);
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ accepted: DEFAULT_MAX_EVENTS });
});

test("an update batch reads exactly the counted index ranges, replaces included", async () => {
  const count = 50;
  const exact = count * RANGES_PER_EVENT + RANGES_PER_BATCH;
  expect((await updateBatch(backend({ databaseQueries: exact }), count)).status).toBe(200);
  expect((await updateBatch(backend({ databaseQueries: exact - 1 }), count)).status).toBe(413);
});

test("a late batch reads exactly the counted index ranges, re-folds included", async () => {
  const count = 50;
  const exact = count * RANGES_PER_LATE_EVENT + RANGES_PER_LATE_BATCH;
  const fits = await lateBatch(backend({ databaseQueries: exact }), count);
  expect(fits.status).toBe(200);
  expect(await fits.json()).toMatchObject({ accepted: count, rejected: [] });
  expect((await lateBatch(backend({ databaseQueries: exact - 1 }), count)).status).toBe(413);
});

test("a batch over the transaction limits is answered 413 so the sender splits it, storing nothing", async () => {
  const t = backend();
  const response = await post(t, { origin: ORIGIN, events: worstBatch(1100, 10) });
  expect(response.status).toBe(413);
  const body = (await response.json()) as { error: string; message: string };
  expect(body.error).toBe("too_large");
  expect(body.message).toContain("index ranges");
  expect((await t.run((ctx) => ctx.db.query("events").take(1))).length).toBe(0);
});

test("the committed _generated api names every function module", () => {
  const api = readFileSync(new URL("../functions/_generated/api.d.ts", import.meta.url), "utf8");
  const missing = Object.keys(modules)
    .filter((path) => !path.includes("_generated") && !path.endsWith("/schema.ts"))
    .map((path) => path.replace(/^\.\.\/functions\//, "").replace(/\.ts$/, ""))
    .filter((name) => !api.includes(`from "../${name}.js"`));
  // Run `npm run codegen` after adding a module.
  expect(missing).toEqual([]);
});
