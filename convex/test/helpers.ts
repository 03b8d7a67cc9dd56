/// <reference types="vite/client" />
/** Building envelopes, posting batches and reading views back in the vitest suites. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { convexTest } from "convex-test";
import { eventContent, GENESIS_HASH } from "../functions/lib/canonical";
import schema from "../functions/schema";
import { VIEW_NAMES, viewInfo } from "../functions/lib/packs";
import type { Envelope } from "../functions/lib/envelope";

export const modules = import.meta.glob("../functions/**/*.*s");
export const TOKEN = "test-token-0123456789";
const HERE = dirname(fileURLToPath(import.meta.url));
/** The shared test vectors (docs/views.md). */
export const VECTOR_DIR = join(HERE, "..", "..", "tests", "vectors");
/** Vector-shaped fixtures of this package. */
export const FIXTURE_DIR = join(HERE, "fixtures");

export type Backend = ReturnType<typeof backend>;

/** A fresh, empty deployment with Convex's transaction limits enforced. */
export function backend(limits: boolean | Record<string, number> = true) {
  return convexTest({ schema, modules, transactionLimits: limits });
}

export type VectorEvent = {
  stream: string;
  type: string;
  data: Record<string, unknown>;
  event_id: string;
  recorded_at: number;
  occurred_at?: number;
  meta?: Record<string, unknown>;
};

export type Rows = Array<Record<string, unknown>>;

export type Vector = {
  name: string;
  description: string;
  /** Events the append-time schema refuses: they pin what a replay of an old log gives. */
  legacy?: boolean;
  events: VectorEvent[];
  /**
   * The order the remote receives the events in, as indexes into `events`
   * (one POST each); seqs still follow `events`. Absent: in order.
   */
  arrival?: number[];
  /** Rows of each view, sorted by key; a view not listed is empty. */
  expected: Record<string, Rows>;
};

/** Every `*.json` vector under `dir` (sub-directories too), with its path relative to `dir`. */
export function loadVectors(dir: string, prefix = ""): Array<[string, Vector]> {
  return readdirSync(dir)
    .sort()
    .flatMap((name): Array<[string, Vector]> => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return loadVectors(path, `${prefix}${name}/`);
      if (!name.endsWith(".json")) return [];
      return [[`${prefix}${name}`, JSON.parse(readFileSync(path, "utf8")) as Vector]];
    });
}

/** Every view's expected rows: the listed ones, and `[]` for the others. */
export function expectedViews(vector: Vector): Record<string, Rows> {
  return Object.fromEntries(VIEW_NAMES.map((view) => [view, vector.expected[view] ?? []]));
}

let counter = 0;
/** A fresh canonical lowercase UUID (v4 layout, deterministic per run). */
export function uuid(): string {
  counter += 1;
  const hex = counter.toString(16).padStart(12, "0");
  return `01900000-0000-4000-8000-${hex}`;
}

/** The last hash built for each `origin:seq`, so a later batch chains onto an earlier one. */
const chain = new Map<string, string>();

/** The daemon's hash of `event` after `prev` (node's SHA-256, independent of the endpoint's). */
export function chainHash(prev: string, event: Omit<Envelope, "hash">): string {
  return createHash("sha256").update(`${prev}\n${eventContent(event)}`).digest("hex");
}

/**
 * Complete envelopes for `events`: seq from `firstSeq`, version per stream,
 * hashes chained as the daemon chains them (from the last envelope built
 * for `firstSeq - 1` of this origin, or genesis).
 */
export function envelopes(origin: string, events: VectorEvent[], firstSeq = 1): Envelope[] {
  const versions = new Map<string, number>();
  let prev = firstSeq === 1 ? GENESIS_HASH : (chain.get(`${origin}:${firstSeq - 1}`) ?? GENESIS_HASH);
  return events.map((e, i) => {
    const version = (versions.get(e.stream) ?? 0) + 1;
    versions.set(e.stream, version);
    const seq = firstSeq + i;
    const content = {
      seq, event_id: e.event_id, stream: e.stream, version, type: e.type, data: e.data,
      meta: e.meta ?? {}, recorded_at: e.recorded_at,
      ...(e.occurred_at === undefined ? {} : { occurred_at: e.occurred_at }), origin,
    };
    prev = chainHash(prev, content);
    chain.set(`${origin}:${seq}`, prev);
    return { ...content, hash: prev };
  });
}

/** `events` (edited after they were built) with their hashes chained again from genesis. */
export function resealed(events: Envelope[]): Envelope[] {
  let prev = GENESIS_HASH;
  return events.map(({ hash: _old, ...content }) => {
    void _old;
    prev = chainHash(prev, content);
    chain.set(`${content.origin}:${content.seq}`, prev);
    return { ...content, hash: prev };
  });
}

/** POST a batch to the ingest endpoint (with `key`, as an origin key). */
export function post(t: Backend, body: unknown, init: { token?: string | null; raw?: string; key?: string } = {}) {
  const token = init.token === undefined ? TOKEN : init.token;
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (init.key !== undefined) headers["X-Atlasd-Origin-Key"] = init.key;
  return t.fetch("/atlasd/ingest", { method: "POST", headers, body: init.raw ?? JSON.stringify(body) });
}

/** Every row of `view` (its columns only), sorted by the view's key. */
export async function viewRows(t: Backend, view: string): Promise<Rows> {
  const docs = await t.run((ctx) => ctx.db.query("view_rows").withIndex("by_view_key", (q) => q.eq("view", view)).collect());
  return sortByKey(view, docs.map((d) => d.row as Record<string, unknown>));
}

/** Rows sorted by the view's key columns, compared column by column. */
export function sortByKey(view: string, rows: Rows): Rows {
  const keys = viewInfo(view).def.key;
  const compare = (a: Record<string, unknown>, b: Record<string, unknown>): number => {
    for (const k of keys) {
      const x = String(a[k]);
      const y = String(b[k]);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
  return [...rows].sort(compare);
}

/** Every view's rows, by view name. */
export async function allViews(t: Backend): Promise<Record<string, Rows>> {
  const out: Record<string, Rows> = {};
  for (const view of VIEW_NAMES) out[view] = await viewRows(t, view);
  return out;
}
