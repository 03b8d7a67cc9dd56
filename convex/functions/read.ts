/**
 * The read API for dashboards and people: public queries, so a React app's
 * `useQuery` / `usePaginatedQuery` subscriptions and Convex's HTTP query API
 * work, each authorized first (lib/auth.ts).
 *
 * - `read:view`: one page of a view's rows, by its main time column
 *   (the index choice is lib/viewquery.ts);
 * - `read:events`: one page of stored events, in (origin, seq) order;
 * - `read:origins`: every sending daemon's bookkeeping.
 *
 * Every read is an index range paged with Convex's `paginate`: no filter
 * scan and no `collect()` of a growing table, so a page stays inside the
 * transaction limits however large the tables grow.
 */
import { paginationOptsValidator, type PaginationOptions } from "convex/server";
import { ConvexError, v } from "convex/values";
import type { Doc } from "./_generated/dataModel";
import { query } from "./_generated/server";
import { authorizeRead } from "./lib/auth";
import { badRequest, readableView, viewRange } from "./lib/viewquery";

/** Most rows one page may ask for. */
export const MAX_PAGE_ITEMS = 1000;
/** Bytes one page reads at most; a larger page is cut short and continues at `continueCursor`. */
export const MAX_PAGE_BYTES = 8 * 1024 * 1024;
/** Most origins `read:origins` answers; more is refused rather than cut silently. */
export const MAX_ORIGINS = 1000;

/** The caller's pagination options, checked and bounded by the deployment's limits. */
export function pageOptions(opts: PaginationOptions): PaginationOptions {
  const { numItems } = opts;
  if (!Number.isInteger(numItems) || numItems < 1 || numItems > MAX_PAGE_ITEMS) {
    badRequest(`paginationOpts.numItems: must be an integer in 1..${MAX_PAGE_ITEMS}`);
  }
  return { ...opts, maximumBytesRead: Math.min(opts.maximumBytesRead ?? MAX_PAGE_BYTES, MAX_PAGE_BYTES) };
}

/** A stored event as the daemon sent it: the envelope fields, no system fields. */
function envelope(doc: Doc<"events">): Record<string, unknown> {
  const { _id, _creationTime, ...fields } = doc;
  void _id;
  void _creationTime;
  return fields;
}

/**
 * One page of events, in (origin, seq) order, optionally of one `origin`,
 * `stream` and/or `type`; each combination has its own index.
 */
export const events = query({
  args: {
    paginationOpts: paginationOptsValidator,
    origin: v.optional(v.string()),
    stream: v.optional(v.string()),
    type: v.optional(v.string()),
    token: v.optional(v.string()),
  },
  handler: async (ctx, { paginationOpts, origin, stream, type, token }) => {
    await authorizeRead(ctx, token);
    const opts = pageOptions(paginationOpts);
    const table = ctx.db.query("events");
    const source =
      stream !== undefined && type !== undefined
        ? table.withIndex("by_stream_type_origin_seq", (q) => {
            const r = q.eq("stream", stream).eq("type", type);
            return origin === undefined ? r : r.eq("origin", origin);
          })
        : stream !== undefined
          ? table.withIndex("by_stream_origin_seq", (q) => {
              const r = q.eq("stream", stream);
              return origin === undefined ? r : r.eq("origin", origin);
            })
          : type !== undefined
            ? table.withIndex("by_type_origin_seq", (q) => {
                const r = q.eq("type", type);
                return origin === undefined ? r : r.eq("origin", origin);
              })
            : table.withIndex("by_origin_seq", (q) => (origin === undefined ? q : q.eq("origin", origin)));
    const result = await source.paginate(opts);
    return { ...result, page: result.page.map(envelope) };
  },
});

/** Every origin that ever sent a batch: `{origin, high_water, events, last_ingest_at}`, by origin. */
export const origins = query({
  args: { token: v.optional(v.string()) },
  handler: async (ctx, { token }) => {
    await authorizeRead(ctx, token);
    const docs = await ctx.db.query("origins").withIndex("by_origin").take(MAX_ORIGINS + 1);
    if (docs.length > MAX_ORIGINS) {
      throw new ConvexError({ code: "too_large", message: `more than ${MAX_ORIGINS} origins; read them with npx convex data origins` });
    }
    return docs.map(({ origin, high_water, events, last_ingest_at }) => ({ origin, high_water, events, last_ingest_at }));
  },
});

/**
 * One page of the rows of `view` (any view of any pack), ordered by its main
 * time column (`order`, default "asc"), optionally with equality `filter`
 * on an indexed column set and/or the `origin` that created the rows. Each
 * row is the view's columns plus `origin`; `rebuilding` is true while the
 * view is being rebuilt after a definition change (rows may be missing).
 */
export const view = query({
  args: {
    view: v.string(),
    paginationOpts: paginationOptsValidator,
    order: v.optional(v.union(v.literal("asc"), v.literal("desc"))),
    filter: v.optional(v.record(v.string(), v.any())),
    origin: v.optional(v.string()),
    token: v.optional(v.string()),
  },
  handler: async (ctx, { view: name, paginationOpts, order, filter, origin, token }) => {
    await authorizeRead(ctx, token);
    const info = readableView(name);
    const opts = pageOptions(paginationOpts);
    const range = viewRange(info, filter ?? {}, origin);
    const result = await ctx.db
      .query("view_rows")
      .withIndex(range.index as "by_view_time", (q) => {
        let r = q as unknown as { eq(field: string, value: unknown): unknown };
        for (const [field, value] of range.eq) r = r.eq(field, value) as typeof r;
        return r as unknown as ReturnType<typeof q.eq>;
      })
      .order(order ?? "asc")
      .paginate(opts);
    const page = result.page
      .filter((doc) => range.origin === null || doc.origin === range.origin)
      .map((doc) => ({ ...(doc.row as Record<string, unknown>), origin: doc.origin }));
    // A view whose definition changed is rebuilt from the events in steps:
    // until then rows may be missing or stale, and the answer says so.
    const def = await ctx.db.query("view_defs").withIndex("by_view", (q) => q.eq("view", name)).first();
    const rebuilding = def !== null && (def.rebuilding || def.hash !== info.hash);
    return { ...result, page, rebuilding };
  },
});
