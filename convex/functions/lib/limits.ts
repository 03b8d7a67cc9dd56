/**
 * Batch limits of the ingest endpoint, and Convex's value limits.
 *
 * The defaults are the largest batch measured to fit one Convex transaction
 * for the worst event mix (see docs/convex.md, "The largest safe batch").
 * Deployments may lower or raise them with environment variables, because
 * Convex's per-transaction limits have changed between backend versions.
 */

/**
 * Events per POST; over this the endpoint answers 413. The worst mix
 * measured (every event a late TaskStatusChanged of its own build and task,
 * seqs scattered: a retry of quarantined events, each re-folding its row)
 * needs 6 index ranges per event, so 682 is the most that fits 4,096; 600
 * keeps 10% headroom.
 */
export const DEFAULT_MAX_EVENTS = 600;
/** Request body bytes per POST; over this the endpoint answers 413. */
export const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

/** Convex value limits (https://docs.convex.dev/production/state/limits). */
export const MAX_FIELD_NAME = 1024;
export const MAX_ARRAY_ITEMS = 8192;
export const MAX_OBJECT_FIELDS = 1024;
/** Nesting of a whole stored document; `data` sits one level below it. */
export const MAX_DOCUMENT_DEPTH = 16;
/** Encoded size of one event (CONTRACT section 2). */
export const MAX_EVENT_BYTES = 1024 * 1024;

/** How many stored positions one ingest reads to advance the high water. */
export const HIGH_WATER_SCAN = 2048;

export type BatchLimits = { maxEvents: number; maxBytes: number };

function positiveInt(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

/** Limits from `ATLASD_INGEST_MAX_EVENTS` / `ATLASD_INGEST_MAX_BYTES`, else the defaults. */
export function batchLimits(env: Record<string, string | undefined>): BatchLimits {
  return {
    maxEvents: positiveInt(env.ATLASD_INGEST_MAX_EVENTS, DEFAULT_MAX_EVENTS),
    maxBytes: positiveInt(env.ATLASD_INGEST_MAX_BYTES, DEFAULT_MAX_BYTES),
  };
}
