/**
 * The ingest endpoint's contract: tokens, malformed and oversized batches,
 * duplicates (sequential and concurrent), rejected events, the high water,
 * and the status endpoint. Transaction limits are on throughout.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { DEFAULT_MAX_BYTES } from "../functions/lib/limits";
import { backend, envelopes, post, resealed, TOKEN, uuid, viewRows, type Backend, type VectorEvent } from "./helpers";

const ORIGIN = "0190bbbb-0000-7000-8000-000000000001";
const OTHER = "0190bbbb-0000-7000-8000-000000000002";

type Result = { accepted: number; duplicates: number; rejected: Array<{ event_id: string; code: string; message: string }>; high_water: number };

function taskEvents(count: number, build = "b1"): VectorEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    stream: `build:${build}`,
    type: "TaskStatusChanged",
    event_id: uuid(),
    recorded_at: 1000 + i,
    data: { build_id: build, task_id: `t${i}`, status: i % 2 ? "done" : "running" },
  }));
}

async function ingest(t: Backend, origin: string, events: unknown[]): Promise<Result> {
  const response = await post(t, { origin, events });
  expect(response.status).toBe(200);
  return (await response.json()) as Result;
}

async function storedCount(t: Backend): Promise<number> {
  return (await t.run((ctx) => ctx.db.query("events").collect())).length;
}

async function statusOf(t: Backend, origin: string, token: string | null = TOKEN): Promise<Response> {
  const headers: Record<string, string> = token === null ? {} : { Authorization: `Bearer ${token}` };
  return t.fetch(`/atlasd/ingest/status?origin=${encodeURIComponent(origin)}`, { headers });
}

beforeEach(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
});
afterEach(() => {
  delete process.env.ATLASD_INGEST_TOKEN;
  delete process.env.ATLASD_INGEST_MAX_EVENTS;
  delete process.env.ATLASD_INGEST_MAX_BYTES;
});

describe("the token", () => {
  test("a wrong token is refused with 401 and nothing is stored", async () => {
    const t = backend();
    const response = await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, taskEvents(2)) }, { token: "wrong" });
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toContain("Bearer");
    expect(await response.json()).toMatchObject({ error: "unauthorized" });
    expect(await storedCount(t)).toBe(0);
  });

  test("a token that only shares a prefix with the right one is refused", async () => {
    const t = backend();
    const response = await post(t, { origin: ORIGIN, events: [] }, { token: `${TOKEN}x` });
    expect(response.status).toBe(401);
  });

  test("a missing Authorization header is refused with 401", async () => {
    const t = backend();
    const response = await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, taskEvents(1)) }, { token: null });
    expect(response.status).toBe(401);
    expect(await storedCount(t)).toBe(0);
  });

  test("a deployment without ATLASD_INGEST_TOKEN refuses everything with 503", async () => {
    delete process.env.ATLASD_INGEST_TOKEN;
    const t = backend();
    const response = await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, taskEvents(1)) }, { token: "" });
    expect(response.status).toBe(503);
    expect(((await response.json()) as { message: string }).message).toContain("ATLASD_INGEST_TOKEN");
    expect(await storedCount(t)).toBe(0);
  });

  test("the status endpoint needs the token too", async () => {
    const t = backend();
    expect((await statusOf(t, ORIGIN, null)).status).toBe(401);
    expect((await statusOf(t, ORIGIN, "wrong")).status).toBe(401);
  });
});

describe("malformed batches", () => {
  const good = () => envelopes(ORIGIN, taskEvents(2));
  const cases: Array<[string, () => string, string]> = [
    ["a body that is not JSON", () => "{not json", "not valid JSON"],
    ["a body that is a list", () => "[]", "must be a JSON object"],
    ["a missing origin", () => JSON.stringify({ events: good() }), "origin"],
    ["events that are not a list", () => JSON.stringify({ origin: ORIGIN, events: {} }), "events: must be a list"],
    ["an event that is not an object", () => JSON.stringify({ origin: ORIGIN, events: [1] }), "events[0]: must be an object"],
    ["an event missing its event_id", () => JSON.stringify({ origin: ORIGIN, events: good().map(({ event_id: _, ...e }) => e) }), "events[0].event_id: missing"],
    ["a seq that is not an integer", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], seq: 1.5 }] }), "events[0].seq"],
    ["a seq given as a string", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], seq: "1" }] }), "events[0].seq"],
    ["data that is a list", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], data: [] }] }), "events[0].data"],
    ["meta that is missing", () => JSON.stringify({ origin: ORIGIN, events: good().map(({ meta: _, ...e }) => e) }), "events[0].meta: missing"],
    ["an uppercase event_id", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], event_id: "0190ABCD-0000-7000-8000-00000000000A" }] }), "event_id"],
    ["a type with a space", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], type: "Build Started" }] }), "events[0].type"],
    ["a stream with a control character", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], stream: "build:\nb1" }] }), "events[0].stream"],
    ["a hash that is not hex", () => JSON.stringify({ origin: ORIGIN, events: [{ ...good()[0], hash: "xyz" }] }), "events[0].hash"],
    ["an event of another origin", () => JSON.stringify({ origin: ORIGIN, events: envelopes(OTHER, taskEvents(1)) }), "events[0].origin"],
    ["seqs out of order", () => JSON.stringify({ origin: ORIGIN, events: good().reverse() }), "events[1].seq"],
    ["one event_id twice", () => { const [a, b] = good(); return JSON.stringify({ origin: ORIGIN, events: [a, { ...b, event_id: a!.event_id }] }); }, "appears twice"],
  ];

  test.each(cases)("%s is refused with 400 and a reason, storing nothing", async (_name, body, reason) => {
    const t = backend();
    const response = await post(t, null, { raw: body() });
    expect(response.status).toBe(400);
    const answer = (await response.json()) as { error: string; message: string };
    expect(answer.error).toBe("bad_request");
    expect(answer.message).toContain(reason);
    expect(await storedCount(t)).toBe(0);
  });

  test("a body that is not UTF-8 is refused with 400", async () => {
    const t = backend();
    const response = await t.fetch("/atlasd/ingest", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    });
    expect(response.status).toBe(400);
  });

  test("the status endpoint without an origin is refused with 400", async () => {
    const t = backend();
    const response = await t.fetch("/atlasd/ingest/status", { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(400);
  });
});

describe("batch limits", () => {
  test("more events than the limit are refused with 413 naming the limits", async () => {
    process.env.ATLASD_INGEST_MAX_EVENTS = "3";
    const t = backend();
    const response = await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, taskEvents(4)) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: "too_large", max_events: 3 });
    expect(await storedCount(t)).toBe(0);
    expect((await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, taskEvents(3)) })).status).toBe(200);
  });

  test("a body over the byte limit is refused with 413", async () => {
    process.env.ATLASD_INGEST_MAX_BYTES = "2000";
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(1));
    events[0]!.data = { ...events[0]!.data, note: "x".repeat(2000) };
    const response = await post(t, { origin: ORIGIN, events });
    expect(response.status).toBe(413);
    expect(await storedCount(t)).toBe(0);
  });

  test("a declared Content-Length over the byte limit is refused before reading", async () => {
    const t = backend();
    const response = await t.fetch("/atlasd/ingest", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Length": String(DEFAULT_MAX_BYTES + 1) },
      body: "{}",
    });
    expect(response.status).toBe(413);
  });

  test("an unusable limit setting falls back to the default", async () => {
    process.env.ATLASD_INGEST_MAX_EVENTS = "lots";
    const t = backend();
    expect((await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, taskEvents(5)) })).status).toBe(200);
  });
});

describe("duplicates", () => {
  test("a batch sent twice is stored once and answered as duplicates", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(6));
    expect(await ingest(t, ORIGIN, events)).toEqual({ accepted: 6, duplicates: 0, rejected: [], high_water: 6 });
    const before = await viewRows(t, "builds");
    expect(await ingest(t, ORIGIN, events)).toEqual({ accepted: 0, duplicates: 6, rejected: [], high_water: 6 });
    expect(await storedCount(t)).toBe(6);
    expect(await viewRows(t, "builds")).toEqual(before);
  });

  test("an overlapping batch stores only its new events", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(6));
    await ingest(t, ORIGIN, events.slice(0, 4));
    expect(await ingest(t, ORIGIN, events.slice(2))).toEqual({ accepted: 2, duplicates: 2, rejected: [], high_water: 6 });
    expect((await viewRows(t, "builds"))[0]).toMatchObject({ tasks_total: 6, tasks_done: 3 });
  });

  test("two identical batches sent at once are stored once", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(5));
    const [a, b] = await Promise.all([ingest(t, ORIGIN, events), ingest(t, ORIGIN, events)]);
    expect([a.accepted, b.accepted].sort()).toEqual([0, 5]);
    expect(a.duplicates + b.duplicates).toBe(5);
    expect(await storedCount(t)).toBe(5);
    expect((await viewRows(t, "tasks")).length).toBe(5);
  });

  test("an event_id already stored under another origin is a duplicate and the high water passes it", async () => {
    const t = backend();
    const events = taskEvents(3);
    await ingest(t, OTHER, envelopes(OTHER, events.slice(1, 2)));
    const result = await ingest(t, ORIGIN, envelopes(ORIGIN, events));
    expect(result).toEqual({ accepted: 2, duplicates: 1, rejected: [], high_water: 3 });
    expect(await storedCount(t)).toBe(3);
  });
});

describe("rejected events", () => {
  test("an event Convex cannot store is rejected with its path and the rest are stored", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(3));
    events[1]!.data = { ...events[1]!.data, steps: [{}, {}, {}, { $ref: "x" }] };
    const result = await ingest(t, ORIGIN, events);
    expect(result.accepted).toBe(2);
    expect(result.rejected).toEqual([
      { event_id: events[1]!.event_id, code: "invalid_value", message: expect.stringContaining("data.steps[3].$ref") },
    ]);
    // seq 2 is missing remotely: the high water stops before it.
    expect(result.high_water).toBe(1);
    expect((await viewRows(t, "tasks")).map((r) => r.task_id)).toEqual(["t0", "t2"]);
  });

  const poison: Array<[string, (data: Record<string, unknown>) => void, string]> = [
    ["nesting deeper than 16 levels", (d) => { let v: unknown = 1; for (let i = 0; i < 15; i++) v = [v]; d.deep = v; }, "nested deeper"],
    ["an array over 8192 items", (d) => { d.big = Array.from({ length: 8193 }, () => 0); }, "8192"],
    ["an object over 1024 fields", (d) => { d.wide = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`f${i}`, i])); }, "1024"],
    ["a non-ASCII field name", (d) => { d["naïve"] = 1; }, "printable ASCII"],
  ];

  test.each(poison)("%s is rejected", async (_name, spoil, reason) => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(1));
    spoil(events[0]!.data);
    const result = await ingest(t, ORIGIN, events);
    expect(result.accepted).toBe(0);
    expect(result.rejected[0]?.message).toContain(reason);
    expect(await storedCount(t)).toBe(0);
  });

  test("a large number is stored as the float64 JSON gives", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(1));
    events[0]!.data.big = 1e300;
    expect((await ingest(t, ORIGIN, resealed(events))).accepted).toBe(1);
  });

  test("nesting of exactly 16 levels is stored", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(1));
    let v: unknown = 1;
    for (let i = 0; i < 14; i++) v = [v];
    events[0]!.data.deep = v; // document 1, data 2, 14 arrays: levels 3..16
    expect((await ingest(t, ORIGIN, resealed(events))).accepted).toBe(1);
  });

  test("an event whose seq already holds another event is rejected as seq_conflict", async () => {
    const t = backend();
    await ingest(t, ORIGIN, envelopes(ORIGIN, taskEvents(2)));
    const forked = envelopes(ORIGIN, taskEvents(3));
    const result = await ingest(t, ORIGIN, forked);
    expect(result.rejected.map((r) => r.code)).toEqual(["seq_conflict", "seq_conflict"]);
    expect(result).toMatchObject({ accepted: 1, duplicates: 0, high_water: 3 });
  });
});

describe("the high water", () => {
  test("a gap holds the high water until it is filled, then it passes what was stored after", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(10));
    expect((await ingest(t, ORIGIN, events.slice(0, 3))).high_water).toBe(3);
    expect((await ingest(t, ORIGIN, events.slice(5))).high_water).toBe(3);
    expect((await ingest(t, ORIGIN, events.slice(3, 5))).high_water).toBe(10);
  });

  test("a batch not starting at seq 1 leaves the high water at 0", async () => {
    const t = backend();
    expect((await ingest(t, ORIGIN, envelopes(ORIGIN, taskEvents(3), 5))).high_water).toBe(0);
  });

  test("sparse seqs (a retry of rejected events) are deduplicated and fill their gaps", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, taskEvents(60));
    const holes = new Set([4, 20, 41, 59]);
    await ingest(t, ORIGIN, events.filter((e) => !holes.has(e.seq)));
    const retry = events.filter((e) => holes.has(e.seq));
    expect(await ingest(t, ORIGIN, retry)).toEqual({ accepted: 4, duplicates: 0, rejected: [], high_water: 60 });
    expect(await ingest(t, ORIGIN, retry)).toMatchObject({ accepted: 0, duplicates: 4 });
  });

  test("the status endpoint answers high water and event count per origin", async () => {
    const t = backend();
    await ingest(t, ORIGIN, envelopes(ORIGIN, taskEvents(4)));
    const response = await statusOf(t, ORIGIN);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ origin: ORIGIN, high_water: 4, events: 4 });
    expect(await (await statusOf(t, OTHER)).json()).toEqual({ origin: OTHER, high_water: 0, events: 0 });
  });

  test("an empty batch is answered with the current high water", async () => {
    const t = backend();
    await ingest(t, ORIGIN, envelopes(ORIGIN, taskEvents(2)));
    expect(await ingest(t, ORIGIN, [])).toEqual({ accepted: 0, duplicates: 0, rejected: [], high_water: 2 });
  });
});
