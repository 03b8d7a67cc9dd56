/**
 * Reads for people and dashboards: internal queries only (Convex dashboard,
 * `npx convex run views:builds '{"status": "running"}'`, or the deployment
 * owner's own authenticated queries calling these). Rows carry exactly the
 * contract's columns (CONTRACT section 4), oldest first.
 */
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import { contractRow, type ViewName } from "./lib/project";

/** Default and maximum rows per answer, as the daemon's `query`. */
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10000;

function bounded(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new Error(`limit must be an integer in 1..${MAX_LIMIT}`);
  }
  return limit;
}

function rows(view: ViewName, docs: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return docs.map((doc) => contractRow(view, doc));
}

/** Builds, optionally only those with `status`. */
export const builds = internalQuery({
  args: { status: v.optional(v.string()), limit: v.optional(v.number()) },
  handler: async (ctx, { status, limit }) => {
    const query =
      status === undefined
        ? ctx.db.query("builds")
        : ctx.db.query("builds").withIndex("by_status", (q) => q.eq("status", status));
    return rows("builds", await query.take(bounded(limit)));
  },
});

/** One build by id, or null. */
export const build = internalQuery({
  args: { build_id: v.string() },
  handler: async (ctx, { build_id }) => {
    const doc = await ctx.db.query("builds").withIndex("by_build_id", (q) => q.eq("build_id", build_id)).first();
    return doc === null ? null : contractRow("builds", doc);
  },
});

/** The tasks of one build, by task id. */
export const tasksOfBuild = internalQuery({
  args: { build_id: v.string(), limit: v.optional(v.number()) },
  handler: async (ctx, { build_id, limit }) => {
    const docs = await ctx.db
      .query("tasks")
      .withIndex("by_build_task", (q) => q.eq("build_id", build_id))
      .take(bounded(limit));
    return rows("tasks", docs);
  },
});

/** The executions of one task. */
export const executionsOfTask = internalQuery({
  args: { build_id: v.string(), task_id: v.string(), limit: v.optional(v.number()) },
  handler: async (ctx, { build_id, task_id, limit }) => {
    const docs = await ctx.db
      .query("executions")
      .withIndex("by_build_task", (q) => q.eq("build_id", build_id).eq("task_id", task_id))
      .take(bounded(limit));
    return rows("executions", docs);
  },
});

/**
 * Patterns, optionally of one `language` and having every one of `tags`.
 * The language narrows through its index; tags are matched in code, reading
 * at most `limit * 10` rows of that language so one call stays bounded.
 */
export const patterns = internalQuery({
  args: { language: v.optional(v.string()), tags: v.optional(v.array(v.string())), limit: v.optional(v.number()) },
  handler: async (ctx, { language, tags, limit }) => {
    const max = bounded(limit);
    const query =
      language === undefined
        ? ctx.db.query("patterns")
        : ctx.db.query("patterns").withIndex("by_language", (q) => q.eq("language", language));
    const wanted = tags ?? [];
    const out: Array<Record<string, unknown>> = [];
    let scanned = 0;
    for await (const doc of query) {
      if (wanted.every((tag) => doc.tags.includes(tag))) out.push(contractRow("patterns", doc));
      scanned += 1;
      if (out.length >= max || scanned >= max * 10) break;
    }
    return out;
  },
});

/** Learnings, optionally of one `category` or one `build_id`. */
export const learnings = internalQuery({
  args: { category: v.optional(v.string()), build_id: v.optional(v.string()), limit: v.optional(v.number()) },
  handler: async (ctx, { category, build_id, limit }) => {
    if (category !== undefined && build_id !== undefined) throw new Error("filter by category or by build_id, not both");
    const query =
      category !== undefined
        ? ctx.db.query("learnings").withIndex("by_category", (q) => q.eq("category", category))
        : build_id !== undefined
          ? ctx.db.query("learnings").withIndex("by_build_id", (q) => q.eq("build_id", build_id))
          : ctx.db.query("learnings");
    return rows("learnings", await query.take(bounded(limit)));
  },
});

/** Every sending daemon: origin, high water, events stored, last ingest time (ms). */
export const origins = internalQuery({
  args: {},
  handler: async (ctx) => {
    const docs = await ctx.db.query("origins").take(MAX_LIMIT);
    return docs.map(({ origin, high_water, events, last_ingest_at }) => ({ origin, high_water, events, last_ingest_at }));
  },
});
