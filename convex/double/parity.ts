/**
 * The remote's verdict on events, one JSON line in, one out: for the parity
 * test of the daemon's validation, canonical encoding and hash chain
 * (tests/convex/test_parity.py). TEST-ONLY.
 *
 *   node --import tsx double/parity.ts
 *
 * In: `{"origin": ..., "event": "<the event's JSON text>", "prev": "<hash>"}`.
 * Out: `{"verdict": "accepted", "content": ..., "stored": ..., "hash": ...}`
 * with the canonical content and hash recomputed from the parsed event, and
 * the canonical content of the value as Convex stores and returns it, or
 * `{"verdict": "refused", "reason": ...}` from the endpoint's own checks
 * (envelope, then storable values and size).
 */
import { createInterface } from "node:readline";
import { convexToJson, jsonToConvex, type Value } from "convex/values";
import { eventContent, eventHash } from "../functions/lib/canonical";
import { BadBatch, parseBatch, storageProblem } from "../functions/lib/envelope";

type Request = { origin: string; event: string; prev: string };

async function verdict({ origin, event, prev }: Request): Promise<Record<string, unknown>> {
  let batch;
  try {
    batch = parseBatch(`{"origin":${JSON.stringify(origin)},"events":[${event}]}`);
  } catch (error) {
    if (error instanceof BadBatch) return { verdict: "refused", reason: error.message };
    throw error;
  }
  const parsed = batch.events[0]!;
  const problem = storageProblem(parsed);
  if (problem !== null) return { verdict: "refused", reason: problem };
  // The value as Convex stores it and gives it back (its own conversion both ways).
  const stored = convexToJson(jsonToConvex(parsed as never) as Value) as unknown as typeof parsed;
  return {
    verdict: "accepted",
    content: eventContent(parsed),
    stored: eventContent(stored),
    hash: await eventHash(prev, parsed),
  };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let answer: Record<string, unknown>;
  try {
    answer = await verdict(JSON.parse(line) as Request);
  } catch (error) {
    answer = { verdict: "error", reason: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
