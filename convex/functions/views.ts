/**
 * Reads for people and dashboards: internal queries only (Convex dashboard,
 * `npx convex run views:rows '{"view": "builds", "filter": {"status": "running"}}'`,
 * or the deployment owner's own authenticated queries calling these). Rows
 * carry exactly the view's columns, oldest first (by the view's main time).
 */
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import { MAX_LIMIT, viewRows } from "./lib/rows";

/** Rows of any pack view, filtered by equality (`tags`-like list columns: contains-all). */
export const rows = internalQuery({
  args: { view: v.string(), filter: v.optional(v.record(v.string(), v.any())), limit: v.optional(v.number()) },
  handler: (ctx, { view, filter, limit }) => viewRows(ctx, view, filter ?? {}, limit),
});

/** Builds, optionally only those with `status`. */
export const builds = internalQuery({
  args: { status: v.optional(v.string()), limit: v.optional(v.number()) },
  handler: (ctx, { status, limit }) => viewRows(ctx, "builds", status === undefined ? {} : { status }, limit),
});

/** One build by id, or null. */
export const build = internalQuery({
  args: { build_id: v.string() },
  handler: async (ctx, { build_id }) => {
    const doc = await ctx.db
      .query("view_rows")
      .withIndex("by_view_key", (q) => q.eq("view", "builds").eq("key", JSON.stringify([build_id])))
      .unique();
    return doc === null ? null : (doc.row as Record<string, unknown>);
  },
});

/** The tasks of one build. */
export const tasksOfBuild = internalQuery({
  args: { build_id: v.string(), limit: v.optional(v.number()) },
  handler: (ctx, { build_id, limit }) => viewRows(ctx, "tasks", { build_id }, limit),
});

/** The executions of one task. */
export const executionsOfTask = internalQuery({
  args: { build_id: v.string(), task_id: v.string(), limit: v.optional(v.number()) },
  handler: (ctx, { build_id, task_id, limit }) => viewRows(ctx, "executions", { build_id, task_id }, limit),
});

/**
 * Patterns, optionally of one `language` and having every one of `tags`.
 * The language narrows through its index; tags are matched in code, reading
 * at most `limit * 10` rows so one call stays bounded.
 */
export const patterns = internalQuery({
  args: { language: v.optional(v.string()), tags: v.optional(v.array(v.string())), limit: v.optional(v.number()) },
  handler: (ctx, { language, tags, limit }) =>
    viewRows(ctx, "patterns", { ...(language === undefined ? {} : { language }), ...(tags === undefined ? {} : { tags }) }, limit),
});

/** Learnings, optionally of one `category` or one `build_id`. */
export const learnings = internalQuery({
  args: { category: v.optional(v.string()), build_id: v.optional(v.string()), limit: v.optional(v.number()) },
  handler: (ctx, { category, build_id, limit }) => {
    if (category !== undefined && build_id !== undefined) throw new Error("filter by category or by build_id, not both");
    const filter = category !== undefined ? { category } : build_id !== undefined ? { build_id } : {};
    return viewRows(ctx, "learnings", filter, limit);
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
