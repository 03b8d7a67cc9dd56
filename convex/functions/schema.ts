/**
 * Tables of the atlasd deployment.
 *
 * - `events`: every event exactly once, keyed by `event_id` (CONTRACT section 2).
 * - `positions`: which (origin, seq) the remote holds, and the event id there;
 *   a small document per event, so deduplicating a batch and advancing the
 *   high water read index ranges of small rows whatever the events weigh.
 * - `origins`: one record per sending daemon (high water, counts).
 * - the five views (CONTRACT section 4), with exactly the contract's columns
 *   plus Convex's system fields, and an index for every lookup and filter.
 */
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

const text = v.union(v.string(), v.null());
const number = v.union(v.number(), v.null());

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
    .index("by_origin_seq", ["origin", "seq"]),

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

  builds: defineTable({
    build_id: v.string(),
    prd_id: text,
    prd_name: text,
    status: v.string(),
    error: text,
    started_at: number,
    completed_at: number,
    tasks_total: v.number(),
    tasks_done: v.number(),
    tasks_failed: v.number(),
  })
    .index("by_build_id", ["build_id"])
    .index("by_status", ["status"]),

  tasks: defineTable({
    build_id: v.string(),
    task_id: v.string(),
    title: text,
    agent: text,
    status: v.string(),
    dependencies: v.array(v.string()),
    phase: number,
    attempts: v.number(),
    error: text,
    created_at: v.number(),
    updated_at: v.number(),
  }).index("by_build_task", ["build_id", "task_id"]),

  executions: defineTable({
    event_id: v.string(),
    build_id: v.string(),
    task_id: v.string(),
    agent: text,
    model: text,
    gates_passed: v.union(v.boolean(), v.null()),
    duration_ms: number,
    error: text,
    recorded_at: v.number(),
  })
    .index("by_event_id", ["event_id"])
    .index("by_build_task", ["build_id", "task_id"]),

  patterns: defineTable({
    pattern_id: v.string(),
    name: text,
    description: text,
    code: text,
    language: text,
    tags: v.array(v.string()),
    created_at: v.number(),
  })
    .index("by_pattern_id", ["pattern_id"])
    .index("by_language", ["language"]),

  learnings: defineTable({
    learning_id: v.string(),
    insight: text,
    category: text,
    build_id: text,
    task_id: text,
    pattern_id: text,
    recorded_at: v.number(),
  })
    .index("by_learning_id", ["learning_id"])
    .index("by_category", ["category"])
    .index("by_build_id", ["build_id"]),
});
