/**
 * Batch limits of the ingest endpoint, and Convex's value limits.
 *
 * The defaults are the largest batch measured to fit one Convex transaction
 * for the worst event mix (see docs/convex.md, "The largest safe batch").
 * Deployments may lower or raise them with environment variables, because
 * Convex's per-transaction limits have changed between backend versions.
 */

/**
 * Events per POST; over this the endpoint answers 413. The worst mix is a
 * batch of late events (each a TaskStatusChanged of its own build and task,
 * below the origin's highest seq, so each re-folds its rows from their
 * stored events): 8 index ranges per event on a real backend, where each
 * replace and patch reads one more range, plus 5 per batch. 600 events
 * would need 4,805 of the 4,096 allowed; 450 need 3,605, 12% under the
 * limit. In-order updates of stored rows read 7 per event (test/limits.test.ts
 * pins both counts).
 */
export const DEFAULT_MAX_EVENTS = 450;
/**
 * Request body bytes per POST; over this the endpoint answers 413. An action
 * has 64 MB of memory; parsing a body of small numbers, converting it and
 * serialising the mutation's arguments grows the heap by ~15 bytes per body
 * byte (measured: 4 MiB -> ~61 MB, 2 MiB -> ~32 MB), so 2 MiB leaves half.
 * It still holds one event of the largest size plus its envelope.
 */
export const DEFAULT_MAX_BYTES = 2 * 1024 * 1024;
/** Convex's limit on one function's arguments, as `getConvexSize` counts them. */
export const MAX_ARGUMENTS_BYTES = 16 * 1024 * 1024;

/** Convex value limits (https://docs.convex.dev/production/state/limits). */
export const MAX_FIELD_NAME = 1024;
export const MAX_ARRAY_ITEMS = 8192;
export const MAX_OBJECT_FIELDS = 1024;
/** Nesting of a whole stored document; `data` sits one level below it. */
export const MAX_DOCUMENT_DEPTH = 16;
/** One stored document, as `getDocumentSize` counts it (system fields included). */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Characters (code points) of a stream name or an origin. */
export const MAX_STREAM = 200;

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
