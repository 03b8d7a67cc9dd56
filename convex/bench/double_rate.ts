/**
 * Ingest rate of the Convex double as its tables grow: stock convex-test
 * (the baseline) against the double's fast path (double/fastpath.ts).
 *
 *   node --import tsx bench/double_rate.ts [EVENTS]
 *
 * Posts EVENTS (default 4000) TaskStatusChanged events in batches of 400
 * through the HTTP ingest, in-process, and prints events/s of the last
 * batch for each. Exits 1 with "TARGET MISSED" if the fast path is not at
 * least 5x the baseline at that size.
 */
import { register } from "node:module";
import schema from "../functions/schema";
import { installFastPath } from "../double/fastpath";
import { functionModules } from "../double/modules";
import { sealed } from "./seal";

register("../double/expose-hook.mjs", import.meta.url);
const { convexTest, __DatabaseFake } = (await import("convex-test")) as typeof import("convex-test") & {
  __DatabaseFake: Parameters<typeof installFastPath>[0];
};

const TOKEN = "bench-token";
const ORIGIN = "0190ffff-0000-7000-8000-000000000001";
const BATCH = 400;
const TARGET_RATIO = 5;
const total = Number(process.argv[2] ?? 4000);
const modules = functionModules();

function events(from: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const seq = from + i;
    return sealed({
      seq, event_id: `0190eeee-0000-7000-8000-${seq.toString(16).padStart(12, "0")}`, stream: `build:b${seq % 50}`,
      version: 1, type: "TaskStatusChanged", data: { build_id: `b${seq % 50}`, task_id: `t${seq}`, status: "running" },
      meta: {}, recorded_at: seq, origin: ORIGIN,
    });
  });
}

/** events/s of the last batch after `total` events. */
async function rate(): Promise<number> {
  const t = convexTest({ schema, modules, transactionLimits: true });
  let last = 0;
  for (let from = 1; from <= total; from += BATCH) {
    const body = JSON.stringify({ origin: ORIGIN, events: events(from, Math.min(BATCH, total - from + 1)) });
    const started = performance.now();
    const response = await t.fetch("/atlasd/ingest", { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` }, body });
    if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
    last = (Math.min(BATCH, total - from + 1) * 1000) / (performance.now() - started);
  }
  return last;
}

process.env.ATLASD_INGEST_TOKEN = TOKEN;
const stock = await rate();
installFastPath(__DatabaseFake, false);
const fast = await rate();
const ratio = fast / stock;
console.log(`double ingest, last batch of ${BATCH} after ${total} events:`);
console.log(`  stock convex-test (baseline) ${stock.toFixed(0)} events/s`);
console.log(`  with the fast path           ${fast.toFixed(0)} events/s  (${ratio.toFixed(1)}x)`);
if (ratio < TARGET_RATIO) {
  console.log(`TARGET MISSED: the fast path should be at least ${TARGET_RATIO}x the baseline`);
  process.exit(1);
}
console.log(`target met: at least ${TARGET_RATIO}x`);
