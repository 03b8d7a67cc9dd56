/**
 * The largest safe ingest batch, measured with convex-test's transaction
 * limits (Convex's defaults: 4,096 index ranges, 16,000 documents and
 * 16 MiB written, 32,000 documents and 16 MiB read).
 *
 *   node --import tsx bench/largest_batch.ts
 *
 * For each event mix it reports what one ingest transaction uses at the
 * default batch size (read from the running mutation with
 * `ctx.meta.getTransactionMetrics()`), the largest count each limit allows
 * (usage grows linearly with the count), and then checks that count for
 * real: the largest batch that passes through `POST /atlasd/ingest`, found
 * by bisection. Exits 1 with "TARGET MISSED" if the default batch
 * (DEFAULT_MAX_EVENTS / DEFAULT_MAX_BYTES) does not fit every mix with 10%
 * headroom on every limit.
 */
import { register } from "node:module";
import { functionModules } from "../double/modules";
import { apply } from "../functions/ingest";
import type { Envelope } from "../functions/lib/envelope";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS } from "../functions/lib/limits";
import schema from "../functions/schema";
import { sealed } from "./seal";

// Count the index range a real backend reads for each replace/patch, as the double does.
register("../double/expose-hook.mjs", import.meta.url);
const { convexTest } = await import("convex-test");

const modules = functionModules();
const TOKEN = "bench-token";
const ORIGIN = "0190cccc-0000-7000-8000-000000000001";
const HEADROOM = 0.9;
const LIMITS = { databaseQueries: 4096, documentsWritten: 16000, bytesWritten: 16 << 20, documentsRead: 32000, bytesRead: 16 << 20 };
type Metric = keyof typeof LIMITS;
const METRICS = Object.keys(LIMITS) as Metric[];

let ids = 0;
function uuid(): string {
  ids += 1;
  return `0190dddd-0000-7000-8000-${ids.toString(16).padStart(12, "0")}`;
}

function envelope(seq: number, type: string, data: Record<string, unknown>, version = 1): Envelope {
  return sealed({ seq, event_id: uuid(), stream: `s:${seq}`, version, type, data, meta: {}, recorded_at: 1_700_000_000_000 + seq, origin: ORIGIN });
}

type Mix = {
  name: string;
  /** Bisect the largest passing count (its setup must itself fit one batch). */
  verify: boolean;
  /** Batches sent before the measured one (state the worst case needs). */
  setup: (n: number) => Envelope[][];
  batch: (n: number) => Envelope[];
};

/** Every event a TaskStatusChanged of its own build and task: 3 index ranges and 4 writes each. */
const status = (n: number, gap: number, first = 1, version = 1): Envelope[] =>
  Array.from({ length: n }, (_, i) =>
    envelope(first + i * gap, "TaskStatusChanged", { build_id: `b${i}`, task_id: `t${i}`, status: "running", error: "e".repeat(40) }, version),
  );

/** The same rows as {@link status}, re-sent late: seqs in the gaps, below the origin's highest. */
const lateStatus = (n: number): Envelope[] =>
  Array.from({ length: n }, (_, i) => envelope(2 + i * 10, "TaskStatusChanged", { build_id: `b${i}`, task_id: `t${i}`, status: "done", error: "e".repeat(40) }));

/** `n` messages of one thread, in setup batches that each fit. */
const messages = (n: number): Envelope[][] => {
  const all = Array.from({ length: n }, (_, i) => envelope(i + 1, "MessageSaved", { message_id: `m${i}`, thread_id: "th", role: "user", content: "c".repeat(40) }));
  const out: Envelope[][] = [];
  for (let i = 0; i < all.length; i += 500) out.push(all.slice(i, i + 500));
  return out;
};

const bigCode = (bytes: number) => "x".repeat(bytes);
// An encoded event stays under 1 MiB with its envelope.
const PATTERN_CODE = (1 << 20) - 2048;

const mixes: Mix[] = [
  { name: "TaskStatusChanged, new build+task each, contiguous seqs", verify: true, setup: () => [], batch: (n) => status(n, 1) },
  {
    name: "TaskStatusChanged, new build+task each, seqs 10 apart (retry of rejected events)",
    verify: true,
    setup: () => [],
    batch: (n) => status(n, 10),
  },
  {
    name: "TaskStatusChanged re-sent late (quarantine retry): each re-folds a row with one stored event",
    verify: true,
    setup: (n) => [[...status(n, 10), envelope(10 * n + 5, "TaskStatusChanged", { build_id: "last", task_id: "last", status: "done" })]],
    batch: (n) => lateStatus(n),
  },
  {
    name: "one ThreadDeleted removing a thread of n messages (n = the count)",
    verify: false,
    setup: (n) => messages(n),
    batch: (n) => [envelope(n + 1, "ThreadDeleted", { thread_id: "th" })],
  },
  {
    name: "TaskStatusChanged updating stored build+task rows, seqs 10 apart (replaces counted)",
    verify: true,
    setup: (n) => [status(n, 10)],
    batch: (n) => status(n, 10, 5, 2),
  },
  {
    name: "the previous batch sent again (all duplicates)",
    verify: false,
    setup: (n) => [status(n, 10)],
    batch: () => [],
  },
  {
    name: "PatternStored of ~1 MiB re-storing ~1 MiB patterns (bytes)",
    verify: false,
    setup: (n) => [Array.from({ length: n }, (_, i) => envelope(i + 1, "PatternStored", { pattern_id: `p${i}`, code: bigCode(PATTERN_CODE) }))],
    batch: (n) => Array.from({ length: n }, (_, i) => envelope(n + i + 1, "PatternStored", { pattern_id: `p${i}`, code: bigCode(PATTERN_CODE) })),
  },
];

function fresh(limits: boolean) {
  return convexTest({ schema, modules, transactionLimits: limits });
}

type Backend = ReturnType<typeof fresh>;
type Usage = Record<Metric, number>;

async function post(t: Backend, events: Envelope[]): Promise<number> {
  try {
    const response = await t.fetch("/atlasd/ingest", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ origin: ORIGIN, events }),
    });
    await response.text();
    return response.status;
  } catch {
    return 500;
  }
}

/** The measured batch for `n` and the state it needs: (setup batches, batch). */
function prepare(mix: Mix, n: number): [Envelope[][], Envelope[]] {
  ids = 0;
  const setup = mix.setup(n);
  const batch = mix.name.startsWith("the previous batch") ? (setup[0] ?? []) : mix.batch(n);
  return [setup, batch];
}

/** What one ingest transaction of `n` events of `mix` uses. */
async function usage(mix: Mix, n: number): Promise<Usage> {
  const t = fresh(false);
  const [setup, batch] = prepare(mix, n);
  for (const b of setup) await t.mutation((ctx) => callApply(ctx, b));
  const tracked = convexTest({ schema, modules, transactionLimits: { databaseQueries: 1e9, documentsWritten: 1e9, bytesWritten: 1e12, documentsRead: 1e9, bytesRead: 1e12 } });
  for (const b of setup) await tracked.mutation((ctx) => callApply(ctx, b));
  const metrics = (await tracked.mutation(async (ctx) => {
    await callApply(ctx, batch);
    return await (ctx as unknown as { meta: { getTransactionMetrics(): Promise<unknown> } }).meta.getTransactionMetrics();
  })) as Record<Metric, { used: number }>;
  void t;
  return Object.fromEntries(METRICS.map((m) => [m, metrics[m].used])) as Usage;
}

async function callApply(ctx: unknown, events: Envelope[]): Promise<unknown> {
  const handler = (apply as unknown as { _handler: (c: unknown, a: unknown) => Promise<unknown> })._handler;
  return handler(ctx, { origin: ORIGIN, events });
}

/** Whether a batch of `n` of `mix` passes the real endpoint with Convex's limits on. */
async function passes(mix: Mix, n: number): Promise<boolean> {
  const t = fresh(true);
  const [setup, batch] = prepare(mix, n);
  for (const b of setup) if ((await post(t, b)) !== 200) throw new Error(`setup of ${n} failed`);
  return (await post(t, batch)) === 200;
}

async function largestPassing(mix: Mix, guess: number): Promise<number> {
  let lo = 0;
  let hi = Math.max(2, Math.ceil(guess * 1.05));
  if (await passes(mix, hi)) return hi; // nothing failed up to 5% above the prediction
  lo = Math.max(1, Math.floor(guess * 0.95));
  if (!(await passes(mix, lo))) lo = 0;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await passes(mix, mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

async function main(): Promise<number> {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
  process.env.ATLASD_INGEST_MAX_EVENTS = "100000";
  process.env.ATLASD_INGEST_MAX_BYTES = String(64 << 20);
  let missed = false;
  console.log(`default batch: ${DEFAULT_MAX_EVENTS} events, ${DEFAULT_MAX_BYTES} bytes; limits ${JSON.stringify(LIMITS)}`);
  for (const mix of mixes) {
    const bytesMix = mix.name.startsWith("PatternStored");
    // Events per default batch: the byte limit binds for ~1 MiB events.
    const n = bytesMix ? Math.floor(DEFAULT_MAX_BYTES / (PATTERN_CODE + 2048)) : DEFAULT_MAX_EVENTS;
    const half = Math.max(1, Math.floor(n / 2));
    const [atN, atHalf] = [await usage(mix, n), await usage(mix, half)];
    console.log(`\n${mix.name}`);
    let predicted = Infinity;
    for (const m of METRICS) {
      const slope = (atN[m] - atHalf[m]) / (n - half);
      const fixed = atN[m] - slope * n;
      const largest = slope > 0 ? Math.floor((LIMITS[m] - fixed) / slope) : Infinity;
      predicted = Math.min(predicted, largest);
      const share = atN[m] / LIMITS[m];
      if (share > HEADROOM) missed = true;
      console.log(
        `  ${m.padEnd(16)} at ${n}: ${String(atN[m]).padStart(9)} of ${String(LIMITS[m]).padStart(9)} (${(share * 100).toFixed(1)}%)` +
          `  per event ${slope.toFixed(1)}  largest ${Number.isFinite(largest) ? largest : "unbounded"}`,
      );
    }
    if (mix.verify && Number.isFinite(predicted)) {
      const verified = await largestPassing(mix, predicted);
      console.log(
        `  predicted largest batch ${predicted}; largest passing POST /atlasd/ingest: ${verified}` +
          ` (${(verified / DEFAULT_MAX_EVENTS).toFixed(2)}x the default ${DEFAULT_MAX_EVENTS})`,
      );
      if (verified < DEFAULT_MAX_EVENTS) missed = true;
    } else if (bytesMix) {
      const ok = await passes(mix, n);
      console.log(`  ${n} events of ~1 MiB (${DEFAULT_MAX_BYTES} byte budget) through POST /atlasd/ingest: ${ok ? "passes" : "FAILS"}`);
      if (!ok) missed = true;
    }
  }
  console.log(missed ? "\nTARGET MISSED: the default batch does not fit every mix with 10% headroom" : "\ntarget met: the default batch fits every mix with 10% headroom");
  return missed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
