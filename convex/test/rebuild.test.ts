/**
 * Rebuilding views whose definition changed: rebuild:start and the chunked
 * rebuild:step replay the stored events into the views, ingests during a
 * rebuild are neither lost nor folded twice, and a deployment that holds
 * events but never built its views rebuilds them by itself.
 */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { internal } from "../functions/_generated/api";
import { VIEWS } from "../functions/lib/packs";
import { rebuildGroup } from "../functions/rebuild";
import { allViews, backend, envelopes, expectedViews, loadVectors, post, TOKEN, VECTOR_DIR, type Backend, type Vector } from "./helpers";
import type { Envelope } from "../functions/lib/envelope";

const ORIGIN = "0190ffff-0000-7000-8000-000000000001";
const vectors = new Map(loadVectors(VECTOR_DIR));
const threads = vectors.get("mastra_threads.json") as Vector;
const lifecycle = vectors.get("lifecycle.json") as Vector;

beforeEach(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  delete process.env.ATLASD_INGEST_TOKEN;
});

async function send(t: Backend, events: Envelope[]): Promise<void> {
  const response = await post(t, { origin: ORIGIN, events });
  expect(response.status).toBe(200);
}

/** Both vectors' expected rows (their views do not overlap). */
function expected(): Record<string, unknown> {
  return { ...expectedViews(threads), ...Object.fromEntries(Object.entries(lifecycle.expected)) };
}

function bothEvents(): Envelope[] {
  return envelopes(ORIGIN, [...lifecycle.events, ...threads.events]);
}

test("views that count each other's rows are rebuilt together", () => {
  expect(rebuildGroup(["messages"])).toEqual(["threads", "messages"]);
  expect(rebuildGroup(["builds"])).toEqual(["builds", "tasks"]);
  expect(rebuildGroup(["assets"])).toEqual(["assets"]);
});

test("a first ingest records every view's definition hash and schedules no rebuild", async () => {
  const t = backend();
  await send(t, bothEvents());
  const status = await t.query(internal.rebuild.status, {});
  expect(status.rebuild).toBeNull();
  for (const view of status.views) expect(view).toMatchObject({ stored: view.bundled, rebuilding: false });
});

test("a changed definition hash rebuilds the view and its counting partner from the stored events", async () => {
  const t = backend();
  await send(t, bothEvents());
  // As after a deploy that changed the mastra pack: an old hash, and rows the old rules gave.
  await t.run(async (ctx) => {
    const def = await ctx.db.query("view_defs").withIndex("by_view", (q) => q.eq("view", "messages")).unique();
    await ctx.db.patch(def!._id, { hash: "0000000000000-0" });
    const rows = await ctx.db.query("view_rows").withIndex("by_view_time", (q) => q.eq("view", "threads")).collect();
    for (const row of rows) await ctx.db.patch(row._id, { row: { ...row.row, messages: 99, title: "old" } });
  });
  const started = await t.mutation(internal.rebuild.start, {});
  expect(started).toEqual({ started: true, views: ["threads", "messages"] });
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await allViews(t)).toEqual(expected());
  const status = await t.query(internal.rebuild.status, {});
  expect(status.rebuild).toMatchObject({ views: ["threads", "messages"], phase: "done", events: bothEvents().length });
  for (const view of status.views) expect(view).toMatchObject({ stored: VIEWS.get(view.view)!.hash, rebuilding: false });
});

test("events ingested while a rebuild runs are folded exactly once, late ones included", async () => {
  const t = backend();
  const events = envelopes(ORIGIN, [...threads.events, ...lifecycle.events]);
  // lifecycle's first and second TaskStatusChanged to running (attempts count them).
  const behind = threads.events.length + 3;
  const ahead = threads.events.length + 6;
  await send(t, events.slice(0, ahead).filter((_, i) => i !== behind));
  await t.mutation(internal.rebuild.start, { views: ["builds", "threads"] });
  const job = await t.run(async (ctx) => (await ctx.db.query("rebuilds").first())!._id);
  // Clear, then replay what is stored, one step at a time, until the replay has begun.
  const replayed = async () => (await t.run((ctx) => ctx.db.get(job)))!.events;
  while ((await replayed()) === 0) await t.mutation(internal.rebuild.step, { id: job });
  await send(t, events.slice(ahead)); // beyond the replay: left to it
  await send(t, [events[behind] as Envelope]); // behind the replay, and late: folded now
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await allViews(t)).toEqual(expected());
});

test("a deployment holding events but no view definitions rebuilds every view by itself", async () => {
  const t = backend();
  await send(t, bothEvents().slice(0, 5));
  await t.run(async (ctx) => {
    for (const def of await ctx.db.query("view_defs").collect()) await ctx.db.delete(def._id);
    for (const row of await ctx.db.query("view_rows").collect()) await ctx.db.delete(row._id);
  });
  await send(t, bothEvents().slice(5));
  await t.finishAllScheduledFunctions(vi.runAllTimers);
  expect(await allViews(t)).toEqual(expected());
  const status = await t.query(internal.rebuild.status, {});
  expect(status.rebuild?.views.length).toBe(VIEWS.size);
});

test("rebuild:start does nothing when every definition is current", async () => {
  const t = backend();
  await send(t, bothEvents());
  expect(await t.mutation(internal.rebuild.start, {})).toEqual({ started: false, views: [] });
});
