/**
 * Rebuilding views whose definition changed (docs/convex.md, "Rebuilding a
 * view").
 *
 * `view_defs` holds the definition hash each view was last built with. When
 * the bundled hash differs (a deploy changed a pack, or the engine), the
 * view's rows are rebuilt from the stored events: `rebuild:start` marks the
 * views and schedules `rebuild:step`, which runs in bounded chunks, each
 * scheduling the next, until done:
 * 1. clearing: the views' `view_rows` and `event_rows` are deleted;
 * 2. folding: every origin's events are replayed in seq order; `cursors`
 *    says how far. Meanwhile the ingest folds these views only for events
 *    at or below their origin's cursor, and leaves later ones to the replay,
 *    so no event is folded twice or missed;
 * 3. when a pass over every origin finds nothing left, the views are marked
 *    built and the ingest folds them again for every event.
 *
 * A view is rebuilt together with the views whose counts it feeds or that
 * count it (their rows depend on each other).
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc } from "./_generated/dataModel";
import { internalMutation, internalQuery, type MutationCtx } from "./_generated/server";
import { Engine, type FoldsView, type StoredEvent } from "./lib/engine";
import { VIEWS, VIEW_NAMES } from "./lib/packs";

/** Rows and `event_rows` deleted per step (rows may be large: bytes read count). */
const CLEAR_ROWS = 200;
const CLEAR_EVENT_ROWS = 2000;
/** Events replayed per step, and the encoded bytes of them a step reads at most. */
const STEP_EVENTS = 300;
const STEP_BYTES = 6 * 1024 * 1024;

/** The views rebuilt with `views`: closed under "counts rows of" both ways. */
export function rebuildGroup(views: Iterable<string>): string[] {
  const group = new Set(views);
  for (let grew = true; grew; ) {
    grew = false;
    for (const info of VIEWS.values()) {
      for (const ref of info.countedBy) {
        const linked = group.has(info.name) || group.has(ref.view);
        if (linked && !(group.has(info.name) && group.has(ref.view))) {
          group.add(info.name);
          group.add(ref.view);
          grew = true;
        }
      }
    }
  }
  return VIEW_NAMES.filter((name) => group.has(name));
}

type ViewState = {
  /** Whether the batch's events fold into `view` now. */
  folds: FoldsView;
  /** Views whose stored definition differs from the bundled one (a rebuild is due). */
  stale: string[];
  defs: Array<Doc<"view_defs">>;
};

/** How the ingest folds views now: all of them, but rebuilding ones only behind the replay. */
export async function viewState(ctx: MutationCtx): Promise<ViewState> {
  const defs = await ctx.db.query("view_defs").take(4 * VIEW_NAMES.length + 16);
  const byView = new Map(defs.map((d) => [d.view, d]));
  const rebuilding = new Set(defs.filter((d) => d.rebuilding).map((d) => d.view));
  let cursors: Record<string, number> = {};
  if (rebuilding.size > 0) {
    const job = await ctx.db.query("rebuilds").order("desc").first();
    if (job !== null && job.phase !== "done") cursors = job.cursors;
  }
  const stale = VIEW_NAMES.filter((name) => {
    const def = byView.get(name);
    return def === undefined || (!def.rebuilding && def.hash !== (VIEWS.get(name)?.hash ?? ""));
  });
  const folds: FoldsView = (view, event) => !rebuilding.has(view) || event.seq <= (cursors[event.origin] ?? 0);
  return { folds, stale, defs };
}

/**
 * After an ingest: a deployment that never built its views records the
 * bundled hashes (nothing to rebuild: the first batch built them); otherwise
 * stale or overflowing views get a rebuild scheduled.
 */
export async function afterIngest(ctx: MutationCtx, state: ViewState, overflow: Set<string>, fresh: boolean): Promise<void> {
  if (fresh && state.defs.length === 0) {
    await Promise.all(VIEW_NAMES.map((view) => ctx.db.insert("view_defs", { view, hash: VIEWS.get(view)?.hash ?? "", rebuilding: false })));
    return;
  }
  for (const view of overflow) {
    const def = state.defs.find((d) => d.view === view);
    if (def !== undefined && !def.rebuilding) await ctx.db.patch(def._id, { hash: "stale" });
  }
  if (state.stale.length > 0 || overflow.size > 0) await ctx.scheduler.runAfter(0, internal.rebuild.start, {});
}

/** Starts rebuilding every view whose stored definition differs from the bundled one (a no-op when none does or one runs). */
export const start = internalMutation({
  args: { views: v.optional(v.array(v.string())) },
  handler: async (ctx, { views }): Promise<{ started: boolean; views: string[] }> => {
    const running = await ctx.db.query("rebuilds").order("desc").first();
    if (running !== null && running.phase !== "done") return { started: false, views: running.views };
    const defs = await ctx.db.query("view_defs").take(4 * VIEW_NAMES.length + 16);
    const byView = new Map(defs.map((d) => [d.view, d]));
    for (const name of views ?? []) if (!VIEWS.has(name)) throw new Error(`unknown view ${JSON.stringify(name)}`);
    const changed =
      views ?? VIEW_NAMES.filter((name) => byView.get(name)?.hash !== VIEWS.get(name)?.hash || byView.get(name)?.rebuilding === true);
    if (changed.length === 0) return { started: false, views: [] };
    const group = rebuildGroup(changed);
    for (const view of group) {
      const hash = VIEWS.get(view)?.hash ?? "";
      const def = byView.get(view);
      if (def === undefined) await ctx.db.insert("view_defs", { view, hash, rebuilding: true });
      else await ctx.db.patch(def._id, { hash, rebuilding: true });
    }
    const id = await ctx.db.insert("rebuilds", {
      views: group,
      hashes: group.map((view) => VIEWS.get(view)?.hash ?? ""),
      phase: "clearing",
      origin: null,
      cursors: {},
      events: 0,
      started_at: Date.now(),
      finished_at: null,
    });
    await ctx.scheduler.runAfter(0, internal.rebuild.step, { id });
    return { started: true, views: group };
  },
});

/** Deletes one chunk of the views' rows and bookkeeping; true when something was deleted. */
async function clearChunk(ctx: MutationCtx, views: readonly string[]): Promise<boolean> {
  for (const view of views) {
    const rows = await ctx.db.query("view_rows").withIndex("by_view_time", (q) => q.eq("view", view)).take(CLEAR_ROWS);
    const marks = await ctx.db
      .query("event_rows")
      .withIndex("by_view_key_origin_seq", (q) => q.eq("view", view))
      .take(CLEAR_EVENT_ROWS);
    if (rows.length + marks.length > 0) {
      await Promise.all([...rows.map((r) => ctx.db.delete(r._id)), ...marks.map((m) => ctx.db.delete(m._id))]);
      return true;
    }
  }
  return false;
}

/** The first origin after `after` (alphabetical), or null. */
async function nextOrigin(ctx: MutationCtx, after: string | null): Promise<string | null> {
  const next = await ctx.db
    .query("origins")
    .withIndex("by_origin", (q) => (after === null ? q : q.gt("origin", after)))
    .first();
  return next?.origin ?? null;
}

/** Replays the next chunk of `origin`'s events into `views`; returns how many and whether the origin is done. */
async function foldChunk(
  ctx: MutationCtx,
  views: ReadonlySet<string>,
  origin: string,
  after: number,
): Promise<{ count: number; last: number; done: boolean }> {
  // Positions are small: read them first, then the events one by one
  // within a byte budget, so large events never overrun a step.
  const positions = await ctx.db
    .query("positions")
    .withIndex("by_origin_seq", (q) => q.eq("origin", origin).gt("seq", after))
    .take(STEP_EVENTS);
  const events: StoredEvent[] = [];
  let bytes = 0;
  let last = after;
  for (const p of positions) {
    const doc = await ctx.db.query("events").withIndex("by_event_id", (q) => q.eq("event_id", p.event_id)).unique();
    last = p.seq;
    // A duplicate stored under another origin is replayed with that origin.
    if (doc === null || doc.origin !== origin || doc.seq !== p.seq) continue;
    const { _id, _creationTime, event_id, type, data, recorded_at, occurred_at, seq } = doc;
    events.push({
      _id, arrival: _creationTime, event_id, type, data: data as Record<string, unknown>, recorded_at, origin, seq,
      ...(occurred_at === undefined ? {} : { occurred_at }),
    });
    bytes += JSON.stringify(data).length;
    if (bytes > STEP_BYTES) break;
  }
  const engine = new Engine(ctx, (view) => views.has(view));
  await engine.prefetch(events);
  for (const event of events) await engine.fold(event, false);
  await engine.flush();
  const done = positions.length < STEP_EVENTS && last === (positions[positions.length - 1]?.seq ?? after);
  return { count: events.length, last, done };
}

/** Finds an origin with events beyond its cursor, or null when the replay has caught up everywhere. */
async function behindOrigin(ctx: MutationCtx, cursors: Record<string, number>): Promise<string | null> {
  for (let origin = await nextOrigin(ctx, null); origin !== null; origin = await nextOrigin(ctx, origin)) {
    const after = cursors[origin] ?? 0;
    const more = await ctx.db
      .query("positions")
      .withIndex("by_origin_seq", (q) => q.eq("origin", origin as string).gt("seq", after))
      .first();
    if (more !== null) return origin;
  }
  return null;
}

/** One bounded step of a rebuild; schedules the next until the rebuild is done. */
export const step = internalMutation({
  args: { id: v.id("rebuilds") },
  handler: async (ctx, { id }): Promise<{ phase: string }> => {
    const job = await ctx.db.get(id);
    if (job === null || job.phase === "done") return { phase: "done" };
    const again = () => ctx.scheduler.runAfter(0, internal.rebuild.step, { id });
    if (job.phase === "clearing") {
      if (!(await clearChunk(ctx, job.views))) {
        await ctx.db.patch(id, { phase: "folding", origin: await nextOrigin(ctx, null) });
      }
      await again();
      return { phase: "clearing" };
    }
    if (job.origin !== null) {
      const origin = job.origin;
      const { count, last, done } = await foldChunk(ctx, new Set(job.views), origin, job.cursors[origin] ?? 0);
      const cursors = { ...job.cursors, [origin]: last };
      await ctx.db.patch(id, { cursors, events: job.events + count, origin: done ? await nextOrigin(ctx, origin) : origin });
      await again();
      return { phase: "folding" };
    }
    // A pass is over: origins that sent more meanwhile are replayed again.
    const behind = await behindOrigin(ctx, job.cursors);
    if (behind !== null) {
      await ctx.db.patch(id, { origin: behind });
      await again();
      return { phase: "folding" };
    }
    await finish(ctx, job);
    return { phase: "done" };
  },
});

async function finish(ctx: MutationCtx, job: Doc<"rebuilds">): Promise<void> {
  for (const [i, view] of job.views.entries()) {
    const def = await ctx.db.query("view_defs").withIndex("by_view", (q) => q.eq("view", view)).unique();
    if (def !== null) await ctx.db.patch(def._id, { rebuilding: false, hash: job.hashes[i] ?? def.hash });
  }
  await ctx.db.patch(job._id, { phase: "done", origin: null, finished_at: Date.now() });
}

/** The latest rebuild and every view's definition state, for `npx convex run rebuild:status`. */
export const status = internalQuery({
  args: {},
  handler: async (ctx) => {
    const job = await ctx.db.query("rebuilds").order("desc").first();
    const defs = await ctx.db.query("view_defs").take(4 * VIEW_NAMES.length + 16);
    const stored = new Map(defs.map((d) => [d.view, d]));
    return {
      rebuild:
        job === null
          ? null
          : { views: job.views, phase: job.phase, events: job.events, started_at: job.started_at, finished_at: job.finished_at },
      views: VIEW_NAMES.map((view) => ({
        view,
        bundled: VIEWS.get(view)?.hash ?? "",
        stored: stored.get(view)?.hash ?? null,
        rebuilding: stored.get(view)?.rebuilding ?? false,
      })),
    };
  },
});

