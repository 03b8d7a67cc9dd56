/**
 * Storing a batch of events: the internal mutation behind `POST /atlasd/ingest`.
 *
 * One call is one transaction: every new event is stored once (keyed by
 * `event_id`), duplicates are skipped, every pack view is updated and the
 * origin's record advanced, all or nothing. The reads are shaped for
 * Convex's per-transaction limits (docs/convex.md, "The largest safe batch"):
 * - one index range over `positions` per cluster of nearby seqs (one for a
 *   contiguous batch) finds what this origin already holds;
 * - one `event_id` lookup per remaining event (an id may be stored under
 *   another origin);
 * - one lookup per distinct view row the batch touches, each row read and
 *   written once per batch (the pack engine, lib/engine.ts, keeps them in
 *   memory meanwhile);
 * - one bounded range to advance the high water over positions stored earlier.
 * On a real backend each `db.replace`/`db.patch` also reads one index range
 * (convex-test does not count it; the double does): the origin's record and
 * every view row the batch changes that existed before.
 *
 * Origin keys: the first call that carries a key digest for an origin records
 * it; from then on a call for that origin without the same digest is refused
 * (`{refused: "origin_key"}`) and changes nothing (docs/security.md).
 */
import { v } from "convex/values";
import type { Id } from "./_generated/dataModel";
import { internalMutation, internalQuery, type MutationCtx } from "./_generated/server";
import { HIGH_WATER_SCAN } from "./lib/limits";
import { foldBatch } from "./lib/ingest_views";

/** Seqs closer than this share one range read of `positions`. */
const CLUSTER_GAP = 8;

export const envelopeValidator = v.object({
  seq: v.number(),
  event_id: v.string(),
  stream: v.string(),
  version: v.number(),
  type: v.string(),
  data: v.any(),
  meta: v.any(),
  recorded_at: v.number(),
  occurred_at: v.optional(v.number()),
  origin: v.string(),
  hash: v.string(),
});

export const rejectionValidator = v.object({ event_id: v.string(), code: v.string(), message: v.string() });

export type Rejection = { event_id: string; code: string; message: string };

export type IngestResult = {
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
  high_water: number;
};

/** What `apply` answers: a result, or a refusal of the whole call. */
export type ApplyOutcome = IngestResult | { refused: "origin_key" };

/** Whether a call carrying `keyHash` may write as an origin whose record holds `bound`. */
export function keyAllowed(bound: string | undefined, keyHash: string | undefined): boolean {
  return bound === undefined || bound === keyHash;
}

/** Runs of seqs (ascending) in which neighbours are at most CLUSTER_GAP apart. */
function clusters(seqs: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const seq of seqs) {
    const last = out[out.length - 1];
    if (last !== undefined && seq - last[1] <= CLUSTER_GAP) last[1] = seq;
    else out.push([seq, seq]);
  }
  return out;
}

/** seq -> event id of the positions `origin` holds in the seq ranges of `seqs`. */
async function heldPositions(ctx: MutationCtx, origin: string, seqs: readonly number[]): Promise<Map<number, string>> {
  const held = new Map<number, string>();
  const ranges = await Promise.all(
    clusters(seqs).map(([lo, hi]) =>
      ctx.db
        .query("positions")
        .withIndex("by_origin_seq", (q) => q.eq("origin", origin).gte("seq", lo).lte("seq", hi))
        .collect(),
    ),
  );
  for (const rows of ranges) for (const p of rows) held.set(p.seq, p.event_id);
  return held;
}

/** The highest seq `origin` held before this batch: its events below it that arrive now are late. */
async function highestHeld(ctx: MutationCtx, origin: string): Promise<number> {
  const last = await ctx.db
    .query("positions")
    .withIndex("by_origin_seq", (q) => q.eq("origin", origin))
    .order("desc")
    .first();
  return last?.seq ?? 0;
}

/** Highest h such that `origin` holds every seq 1..h, starting from `from`. */
async function advanceHighWater(ctx: MutationCtx, origin: string, from: number, heldNow: Set<number>): Promise<number> {
  let h = from;
  while (heldNow.has(h + 1)) h += 1;
  // Positions stored by earlier batches may continue the run (e.g. after a
  // rejected event was finally stored); one bounded range, so a very long run
  // is finished by the next ingests.
  const after = await ctx.db
    .query("positions")
    .withIndex("by_origin_seq", (q) => q.eq("origin", origin).gt("seq", h))
    .take(HIGH_WATER_SCAN);
  for (const p of after) {
    if (p.seq !== h + 1) break;
    h = p.seq;
  }
  return h;
}

export const apply = internalMutation({
  args: {
    origin: v.string(),
    events: v.array(envelopeValidator),
    key_hash: v.optional(v.string()),
  },
  handler: async (ctx, { origin, events, key_hash }): Promise<ApplyOutcome> => {
    const rejected: Rejection[] = [];
    let accepted = 0;
    let duplicates = 0;
    const record = await ctx.db.query("origins").withIndex("by_origin", (q) => q.eq("origin", origin)).first();
    if (!keyAllowed(record?.key_hash, key_hash)) return { refused: "origin_key" };
    const [held, folded] = await Promise.all([
      heldPositions(ctx, origin, events.map((e) => e.seq)),
      highestHeld(ctx, origin),
    ]);

    const unknown = events.filter((e) => !held.has(e.seq));
    const stored = await Promise.all(
      unknown.map((e) => ctx.db.query("events").withIndex("by_event_id", (q) => q.eq("event_id", e.event_id)).first()),
    );
    const storedElsewhere = new Set(stored.flatMap((doc) => (doc === null ? [] : [doc.event_id])));

    const fresh: typeof events = [];
    const freshIds: Array<Promise<Id<"events">>> = [];
    const heldNow = new Set<number>();
    const writes: Array<Promise<unknown>> = [];
    for (const event of events) {
      const there = held.get(event.seq);
      if (there === event.event_id) {
        duplicates += 1;
        heldNow.add(event.seq);
      } else if (there !== undefined) {
        // This origin's seq already holds another event: its log was replaced or forked.
        rejected.push({
          event_id: event.event_id,
          code: "seq_conflict",
          message: `seq ${event.seq} of origin ${origin} already holds event ${there}`,
        });
        heldNow.add(event.seq);
      } else if (storedElsewhere.has(event.event_id)) {
        // Stored under another origin or seq: a duplicate by id; the position is
        // recorded so this origin's high water can pass it.
        duplicates += 1;
        heldNow.add(event.seq);
        writes.push(ctx.db.insert("positions", { origin, seq: event.seq, event_id: event.event_id }));
      } else {
        accepted += 1;
        heldNow.add(event.seq);
        fresh.push(event);
        const id = ctx.db.insert("events", event);
        freshIds.push(id);
        writes.push(id);
        writes.push(ctx.db.insert("positions", { origin, seq: event.seq, event_id: event.event_id }));
      }
    }
    await Promise.all(writes);

    const ids = await Promise.all(freshIds);
    await foldBatch(
      ctx,
      fresh.map((e, i) => ({ ...e, _id: ids[i] as Id<"events">, arrival: Infinity })),
      folded,
    );

    const highWater = await advanceHighWater(ctx, origin, record?.high_water ?? 0, heldNow);
    const now = Date.now();
    // The first key an origin presents binds it (also for origins that synced before keys existed).
    const bind = key_hash !== undefined && record?.key_hash === undefined ? { key_hash } : {};
    if (record === null) {
      await ctx.db.insert("origins", { origin, high_water: highWater, events: accepted, last_ingest_at: now, ...bind });
    } else {
      await ctx.db.patch(record._id, {
        high_water: highWater,
        events: record.events + accepted,
        last_ingest_at: now,
        ...bind,
      });
    }
    return { accepted, duplicates, rejected, high_water: highWater };
  },
});

/**
 * The stored hash of each of `seqs` of `origin` (null where nothing is held):
 * the previous hashes the endpoint checks a batch's chain against. Two index
 * ranges per seq.
 */
export const storedHashes = internalQuery({
  args: { origin: v.string(), seqs: v.array(v.number()) },
  handler: async (ctx, { origin, seqs }): Promise<Array<string | null>> => {
    return Promise.all(
      seqs.map(async (seq) => {
        const position = await ctx.db
          .query("positions")
          .withIndex("by_origin_seq", (q) => q.eq("origin", origin).eq("seq", seq))
          .first();
        if (position === null) return null;
        const event = await ctx.db
          .query("events")
          .withIndex("by_event_id", (q) => q.eq("event_id", position.event_id))
          .first();
        // Stored under another origin's id (a duplicate by id): its chain is not this one.
        return event !== null && event.origin === origin && event.seq === seq ? event.hash : null;
      }),
    );
  },
});

/**
 * Forget the key recorded for `origin`, so the next call that carries a key
 * binds it anew: how a machine whose data dir (and key) was lost is re-keyed.
 * `npx convex run ingest:forgetOriginKey '{"origin": "..."}'`
 */
export const forgetOriginKey = internalMutation({
  args: { origin: v.string() },
  handler: async (ctx, { origin }) => {
    const record = await ctx.db.query("origins").withIndex("by_origin", (q) => q.eq("origin", origin)).first();
    if (record === null || record.key_hash === undefined) return { origin, forgotten: false };
    await ctx.db.patch(record._id, { key_hash: undefined });
    return { origin, forgotten: true };
  },
});

/** `{origin, high_water, events}` of one origin (zeros when it never sent anything). */
export const status = internalQuery({
  args: { origin: v.string(), key_hash: v.optional(v.string()) },
  handler: async (ctx, { origin, key_hash }) => {
    const record = await ctx.db.query("origins").withIndex("by_origin", (q) => q.eq("origin", origin)).first();
    return {
      allowed: keyAllowed(record?.key_hash, key_hash),
      origin,
      high_water: record?.high_water ?? 0,
      events: record?.events ?? 0,
      last_ingest_at: record?.last_ingest_at ?? null,
    };
  },
});

