/**
 * Tables of the atlasd deployment.
 *
 * - `events`: every event exactly once, keyed by `event_id` (docs/eventlog.md).
 * - `positions`: which (origin, seq) the remote holds, and the event id there;
 *   a small document per event, so deduplicating a batch and advancing the
 *   high water read index ranges of small rows whatever the events weigh.
 * - `origins`: one record per sending daemon (high water, counts).
 * - `view_rows`, `event_rows`, `view_defs`, `rebuilds`: the rows of every
 *   pack view and their bookkeeping (docs/convex.md, "How pack rows are
 *   stored"); every read of them goes through an index.
 */
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  events: defineTable({
    seq: v.number(),
    event_id: v.string(),
    stream: v.string(),
    version: v.number(),
    type: v.string(),
    // Objects (checked at the endpoint); any field names Convex accepts.
    data: v.any(),
    meta: v.any(),
    recorded_at: v.number(),
    occurred_at: v.optional(v.number()),
    origin: v.string(),
    hash: v.string(),
  })
    .index("by_event_id", ["event_id"])
    .index("by_origin_seq", ["origin", "seq"])
    // read:events filters: each equality prefix followed by (origin, seq),
    // so every combination pages in (origin, seq) order without a scan.
    .index("by_stream_origin_seq", ["stream", "origin", "seq"])
    .index("by_type_origin_seq", ["type", "origin", "seq"])
    .index("by_stream_type_origin_seq", ["stream", "type", "origin", "seq"]),

  positions: defineTable({
    origin: v.string(),
    seq: v.number(),
    event_id: v.string(),
  }).index("by_origin_seq", ["origin", "seq"]),

  origins: defineTable({
    origin: v.string(),
    high_water: v.number(),
    events: v.number(),
    last_ingest_at: v.number(),
    /** Hex SHA-256 of the origin key, recorded on first contact (docs/security.md). */
    key_hash: v.optional(v.string()),
  }).index("by_origin", ["origin"]),

  // --- pack views (docs/convex.md, "How pack rows are stored") ---------------

  /**
   * Every row of every pack view, one document per (view, key). `row` holds
   * exactly the view's columns; `time` is the view's main time column;
   * `f1`..`f4` hold the values of the view's indexed columns, laid out per
   * view by `lib/slots.ts` (absent when the view uses fewer slots).
   */
  view_rows: defineTable({
    view: v.string(),
    key: v.string(),
    origin: v.string(),
    row: v.any(),
    time: v.union(v.number(), v.null()),
    f1: v.optional(v.any()),
    f2: v.optional(v.any()),
    f3: v.optional(v.any()),
    f4: v.optional(v.any()),
  })
    .index("by_view_key", ["view", "key"])
    .index("by_view_time", ["view", "time"])
    .index("by_view_origin_time", ["view", "origin", "time"])
    .index("by_view_f1_time", ["view", "f1", "time"])
    .index("by_view_f2_time", ["view", "f2", "time"])
    .index("by_view_f3_time", ["view", "f3", "time"])
    .index("by_view_f4_time", ["view", "f4", "time"])
    .index("by_view_f1_f2_time", ["view", "f1", "f2", "time"])
    .index("by_view_f3_f4_time", ["view", "f3", "f4", "time"]),

  /**
   * Which stored events wrote which view row: one small document per
   * (event, row addressed by key), and per `remove_matching` a document under
   * the match's key. A late event re-folds its rows from these in seq order.
   */
  event_rows: defineTable({
    view: v.string(),
    key: v.string(),
    origin: v.string(),
    seq: v.number(),
    event: v.id("events"),
  })
    .index("by_view_key_origin_seq", ["view", "key", "origin", "seq"])
    .index("by_view_origin_seq", ["view", "origin", "seq"]),

  /** Each view's definition hash as last built, and whether a rebuild is under way. */
  view_defs: defineTable({
    view: v.string(),
    hash: v.string(),
    rebuilding: v.boolean(),
  }).index("by_view", ["view"]),

  /** A rebuild in progress: the views it rebuilds and where its replay stands. */
  rebuilds: defineTable({
    views: v.array(v.string()),
    hashes: v.array(v.string()),
    phase: v.union(v.literal("clearing"), v.literal("folding"), v.literal("done")),
    /** The origin being replayed (null between passes). */
    origin: v.union(v.string(), v.null()),
    /** origin -> the highest seq replayed so far; ingest folds these views only up to it. */
    cursors: v.record(v.string(), v.number()),
    events: v.number(),
    started_at: v.number(),
    finished_at: v.union(v.number(), v.null()),
  }),
});
