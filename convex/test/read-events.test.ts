/**
 * read:events and read:origins: every stored event exactly once, in
 * (origin, seq) order, through each filter's index; the origins'
 * bookkeeping as the ingest keeps it. Transaction limits are on.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { api } from "../functions/_generated/api";
import { backend, envelopes, post, TOKEN, uuid, type Backend } from "./helpers";
import { allPages, configure, insertChunked, READ_TOKEN, refusal } from "./readers";

const ORIGINS = ["0190bbbb-0000-7000-8000-000000000002", "0190bbbb-0000-7000-8000-000000000001"];
const TYPES = ["BuildStarted", "TaskLogged", "Other"];
const PER_ORIGIN = 1500;

beforeEach(() => configure({ read: READ_TOKEN, ingest: TOKEN }));
afterEach(() => configure({}));

type Row = { origin: string; seq: number; stream: string; type: string; event_id: string };

/** PER_ORIGIN events per origin, inserted directly; streams and types cycle. */
async function seeded(): Promise<{ t: Backend; all: Row[] }> {
  const t = backend();
  const all: Row[] = [];
  for (const origin of ORIGINS) {
    for (let seq = 1; seq <= PER_ORIGIN; seq++) {
      all.push({ origin, seq, stream: `build:b${seq % 7}`, type: TYPES[seq % TYPES.length]!, event_id: uuid() });
    }
  }
  await insertChunked(
    t,
    "events",
    all.map((e) => ({ ...e, version: e.seq, data: { n: e.seq }, meta: {}, recorded_at: e.seq, hash: "0".repeat(64) })),
  );
  all.sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : a.seq - b.seq));
  return { t, all };
}

function read(t: Backend, filter: { origin?: string; stream?: string; type?: string }, numItems = 100) {
  return allPages((cursor) => t.query(api.read.events, { paginationOpts: { numItems, cursor }, token: READ_TOKEN, ...filter }));
}

const key = (e: Record<string, unknown>): string => `${String(e.origin)}/${String(e.seq)}`;

describe("read:events", () => {
  test("pages of 100 give every event exactly once, in (origin, seq) order, through each filter's index", async () => {
    const { t, all } = await seeded();
    const filters: Array<{ origin?: string; stream?: string; type?: string }> = [
      {},
      { origin: ORIGINS[0] },
      { stream: "build:b3" },
      { stream: "build:b3", origin: ORIGINS[1] },
      { type: "TaskLogged" },
      { type: "TaskLogged", origin: ORIGINS[0] },
      { stream: "build:b3", type: "Other" },
      { stream: "build:b3", type: "Other", origin: ORIGINS[0] },
    ];
    for (const filter of filters) {
      const expected = all.filter(
        (e) =>
          (filter.origin === undefined || e.origin === filter.origin) &&
          (filter.stream === undefined || e.stream === filter.stream) &&
          (filter.type === undefined || e.type === filter.type),
      );
      const { rows, pages } = await read(t, filter);
      expect(rows.map(key), JSON.stringify(filter)).toEqual(expected.map(key));
      // Convex may end with an empty page when the last page is exactly full.
      expect(pages).toBeGreaterThanOrEqual(Math.ceil(expected.length / 100));
      expect(pages).toBeLessThanOrEqual(Math.ceil(expected.length / 100) + 1);
    }
  });

  test("events come back as the daemon sent them, without system fields", async () => {
    const t = backend();
    const origin = ORIGINS[0]!;
    const batch = envelopes(origin, [
      { stream: "build:b-1", type: "BuildStarted", data: { build_id: "b-1", prd_id: "p", prd_name: "P" }, event_id: uuid(), recorded_at: 5, occurred_at: 4 },
    ]);
    expect((await post(t, { origin, events: batch })).status).toBe(200);
    const { rows } = await read(t, { origin });
    expect(rows).toEqual(batch);
  });

  test("a page stops at 8 MiB read and continues after its last event, so large events never overflow a page", async () => {
    const t = backend();
    const origin = ORIGINS[0]!;
    const big = "x".repeat(600_000);
    const docs = Array.from({ length: 20 }, (_, i) => ({
      origin, seq: i + 1, stream: "s", type: "Big", event_id: uuid(), version: i + 1,
      data: { big }, meta: {}, recorded_at: i, hash: "0".repeat(64),
    }));
    await insertChunked(t, "events", docs, 5);
    const first = await t.query(api.read.events, { paginationOpts: { numItems: 100, cursor: null }, token: READ_TOKEN });
    expect(first.page.length).toBeGreaterThan(0);
    expect(first.page.length).toBeLessThan(20);
    expect(first.isDone).toBe(false);
    const { rows } = await read(t, { origin });
    expect(rows.map((e) => e.seq)).toEqual(docs.map((d) => d.seq));
  });

  test("a page larger than 1000 items or not a positive integer is refused", async () => {
    const t = backend();
    for (const numItems of [0, 1001, 2.5]) {
      const data = await refusal(t.query(api.read.events, { paginationOpts: { numItems, cursor: null }, token: READ_TOKEN }));
      expect(data).toMatchObject({ code: "bad_request" });
      expect(data.message).toContain("numItems");
    }
  });
});

describe("read:origins", () => {
  test("lists every origin with its high water, event count and last ingest time", async () => {
    const t = backend();
    const before = Date.now();
    for (const [i, origin] of ORIGINS.entries()) {
      const events = envelopes(
        origin,
        Array.from({ length: i + 2 }, (_, n) => ({ stream: `s${n}`, type: "Other", data: {}, event_id: uuid(), recorded_at: n })),
      );
      expect((await post(t, { origin, events })).status).toBe(200);
    }
    const origins = await t.query(api.read.origins, { token: READ_TOKEN });
    expect(origins.map(({ origin, high_water, events }) => ({ origin, high_water, events }))).toEqual([
      { origin: ORIGINS[1], high_water: 3, events: 3 },
      { origin: ORIGINS[0], high_water: 2, events: 2 },
    ]);
    for (const o of origins) expect(o.last_ingest_at).toBeGreaterThanOrEqual(before);
  });
});
