/**
 * Reading back what the deployment holds: events of an origin and whole
 * views. Internal queries (dashboard, `npx convex run`, and the local double
 * the Python tests use); never exposed publicly since they return event data.
 */
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import { contractRow, VIEW_NAMES, type ViewName } from "./lib/project";

const MAX_LIMIT = 10000;

/** Events of `origin` with seq > `from_seq`, in seq order, as the daemon sent them. */
export const events = internalQuery({
  args: { origin: v.string(), from_seq: v.optional(v.number()), limit: v.optional(v.number()) },
  handler: async (ctx, { origin, from_seq, limit }) => {
    const docs = await ctx.db
      .query("events")
      .withIndex("by_origin_seq", (q) => q.eq("origin", origin).gt("seq", from_seq ?? 0))
      .take(Math.min(limit ?? MAX_LIMIT, MAX_LIMIT));
    return docs.map(({ seq, event_id, stream, version, type, data, meta, recorded_at, occurred_at, origin: o, hash }) => ({
      seq, event_id, stream, version, type, data, meta, recorded_at,
      ...(occurred_at === undefined ? {} : { occurred_at }), origin: o, hash,
    }));
  },
});

/** One event by id, whichever origin sent it, or null. */
export const event = internalQuery({
  args: { event_id: v.string() },
  handler: async (ctx, { event_id }) => {
    const doc = await ctx.db.query("events").withIndex("by_event_id", (q) => q.eq("event_id", event_id)).first();
    if (doc === null) return null;
    const { _id, _creationTime, ...envelope } = doc;
    void _id;
    void _creationTime;
    return envelope;
  },
});

/** Every row of a view (up to 10,000), contract columns only, oldest first. */
export const view = internalQuery({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    if (!(VIEW_NAMES as readonly string[]).includes(name)) {
      throw new Error(`unknown view ${JSON.stringify(name)}; one of ${VIEW_NAMES.join(", ")}`);
    }
    const view = name as ViewName;
    const docs = await ctx.db.query(view).take(MAX_LIMIT);
    return docs.map((doc) => contractRow(view, doc));
  },
});
