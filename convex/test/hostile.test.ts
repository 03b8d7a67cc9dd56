/**
 * The endpoint against a sender that lies or errs: events whose hash is not
 * their chain's, origins bound to a key, values JavaScript or Convex would
 * change or count differently, and sizes in Convex's own units.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { internal } from "../functions/_generated/api";
import { createHash } from "node:crypto";
import { eventContent, GENESIS_HASH, rawEvents } from "../functions/lib/canonical";
import { backend, chainHash, envelopes, post, resealed, TOKEN, uuid, type Backend, type VectorEvent } from "./helpers";

const ORIGIN = "0190cccc-0000-7000-8000-000000000001";
const KEY = "a".repeat(64);

type Result = { accepted: number; duplicates: number; rejected: Array<{ event_id: string; code: string; message: string }>; high_water: number };

function notes(count: number, extra: Record<string, unknown> = {}): VectorEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    stream: "notes", type: "NoteAdded", event_id: uuid(), recorded_at: 1000 + i, data: { n: i, ...extra },
  }));
}

async function ok(response: Response): Promise<Result> {
  expect(response.status).toBe(200);
  return (await response.json()) as Result;
}

async function stored(t: Backend): Promise<number> {
  return (await t.run((ctx) => ctx.db.query("events").collect())).length;
}

function status(t: Backend, key?: string): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` };
  if (key !== undefined) headers["X-Atlasd-Origin-Key"] = key;
  return t.fetch(`/atlasd/ingest/status?origin=${ORIGIN}`, { headers });
}

beforeEach(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
});
afterEach(() => {
  delete process.env.ATLASD_INGEST_TOKEN;
  delete process.env.ATLASD_INGEST_MAX_BYTES;
});

describe("the hash chain", () => {
  test("an event whose content differs from its hash is rejected alone as hash_mismatch", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, notes(3));
    events[1]!.data.n = 99; // changed after sealing
    const result = await ok(await post(t, { origin: ORIGIN, events }));
    expect(result.rejected.map((r) => [r.event_id, r.code])).toEqual([[events[1]!.event_id, "hash_mismatch"]]);
    expect(result.accepted).toBe(2);
  });

  test("the first event of a batch is checked against the stored hash of the seq before it", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, notes(4));
    await ok(await post(t, { origin: ORIGIN, events: events.slice(0, 2) }));
    const forged = { ...events[2]!, hash: chainHash("f".repeat(64), events[2]!) };
    const result = await ok(await post(t, { origin: ORIGIN, events: [forged] }));
    expect(result.rejected.map((r) => r.code)).toEqual(["hash_mismatch"]);
    expect((await ok(await post(t, { origin: ORIGIN, events: events.slice(2) }))).accepted).toBe(2);
  });

  test("seq 1 is checked against the genesis hash", async () => {
    const t = backend();
    const [event] = envelopes(ORIGIN, notes(1));
    const wrong = { ...event!, hash: chainHash("1".repeat(64), event!) };
    expect((await ok(await post(t, { origin: ORIGIN, events: [wrong] }))).rejected[0]?.code).toBe("hash_mismatch");
    expect(chainHash(GENESIS_HASH, event!)).toBe(event!.hash);
  });

  test("an event logged before the number rule (1.0 in its text) passes on the hash of its own text", async () => {
    const t = backend();
    const [event] = envelopes(ORIGIN, notes(1));
    const { hash: _h, ...fields } = event!;
    void _h;
    // The daemon's text of that era: the float written as 1.0, which JavaScript reads as 1.
    const content = eventContent(fields).replace('"n":0', '"n":1.0');
    const hash = createHash("sha256").update(`${GENESIS_HASH}\n${content}`).digest("hex");
    const raw = `{"origin":"${ORIGIN}","events":[${content.slice(0, -1)},"hash":"${hash}"}]}`;
    expect((await ok(await post(t, null, { raw }))).accepted).toBe(1);
    const forged = raw.replace('"n":1.0', '"n":2.0');
    const again = await ok(await post(backend(), null, { raw: forged }));
    expect(again.rejected.map((r) => r.code)).toEqual(["hash_mismatch"]);
  });

  test("an event sent under a new origin is checked with the origin it was logged under", async () => {
    const t = backend();
    const OLD = "0190cccc-0000-7000-8000-0000000000aa";
    const [event] = envelopes(OLD, notes(1));
    const moved = { ...event!, origin: ORIGIN, logged_origin: OLD };
    expect((await ok(await post(t, { origin: ORIGIN, events: [moved] }))).accepted).toBe(1);
    const storedEvent = await t.run((ctx) => ctx.db.query("events").first());
    expect(storedEvent).toMatchObject({ origin: ORIGIN, hash: event!.hash });
    expect(storedEvent).not.toHaveProperty("logged_origin");
    const unlabelled = { ...envelopes(OLD, notes(1))[0]!, origin: ORIGIN };
    const result = await ok(await post(backend(), { origin: ORIGIN, events: [unlabelled] }));
    expect(result.rejected.map((r) => r.code)).toEqual(["hash_mismatch"]);
  });

  test("an event whose predecessor the remote does not hold is stored unchecked", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, notes(5));
    const result = await ok(await post(t, { origin: ORIGIN, events: [{ ...events[4]!, hash: "e".repeat(64) }] }));
    expect(result).toMatchObject({ accepted: 1, rejected: [] });
  });
});

describe("the origin key", () => {
  test("the first key an origin presents binds it; another key is refused with 403, storing nothing", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, notes(2));
    expect((await ok(await post(t, { origin: ORIGIN, events: events.slice(0, 1) }, { key: KEY }))).accepted).toBe(1);
    const other = await post(t, { origin: ORIGIN, events: events.slice(1) }, { key: "b".repeat(64) });
    expect(other.status).toBe(403);
    expect(await other.json()).toMatchObject({ error: "origin_key" });
    const none = await post(t, { origin: ORIGIN, events: events.slice(1) });
    expect(none.status).toBe(403);
    expect(await stored(t)).toBe(1);
  });

  test("the status of a bound origin needs its key", async () => {
    const t = backend();
    await ok(await post(t, { origin: ORIGIN, events: envelopes(ORIGIN, notes(1)) }, { key: KEY }));
    expect((await status(t)).status).toBe(403);
    expect((await status(t, "c".repeat(64))).status).toBe(403);
    expect(await (await status(t, KEY)).json()).toMatchObject({ high_water: 1, events: 1 });
  });

  test("an origin that synced without a key is bound by the first key it sends", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, notes(3));
    await ok(await post(t, { origin: ORIGIN, events: events.slice(0, 1) }));
    await ok(await post(t, { origin: ORIGIN, events: events.slice(1, 2) }, { key: KEY }));
    expect((await post(t, { origin: ORIGIN, events: events.slice(2) })).status).toBe(403);
  });

  test("forgetting an origin's key lets the next key bind it (re-keying a restored machine)", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, notes(2));
    await ok(await post(t, { origin: ORIGIN, events: events.slice(0, 1) }, { key: KEY }));
    expect(await t.mutation(internal.ingest.forgetOriginKey, { origin: ORIGIN })).toEqual({ origin: ORIGIN, forgotten: true });
    const fresh = "d".repeat(64);
    expect((await ok(await post(t, { origin: ORIGIN, events: events.slice(1) }, { key: fresh }))).accepted).toBe(1);
    expect((await status(t, KEY)).status).toBe(403);
  });
});

describe("values measured as the daemon measures them", () => {
  test("a stream of 150 emoji (300 UTF-16 units) is 150 characters and is stored", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, [{ ...notes(1)[0]!, stream: "\u{1F600}".repeat(150) }]);
    expect((await ok(await post(t, { origin: ORIGIN, events }))).accepted).toBe(1);
  });

  test("a stream of 201 characters is refused with 400", async () => {
    const t = backend();
    const events = envelopes(ORIGIN, [{ ...notes(1)[0]!, stream: "\u{1F600}".repeat(201) }]);
    expect((await post(t, { origin: ORIGIN, events })).status).toBe(400);
  });

  test("a __proto__ field, which a JavaScript copy would drop, is rejected as invalid_value", async () => {
    const t = backend();
    const [event] = envelopes(ORIGIN, notes(1));
    const raw = JSON.stringify({ origin: ORIGIN, events: [event] }).replace('"data":{', '"data":{"__proto__":{"x":1},');
    const result = await ok(await post(t, null, { raw }));
    expect(result.rejected[0]).toMatchObject({ code: "invalid_value" });
    expect(result.rejected[0]!.message).toContain("__proto__");
  });

  test("an event of 1 MB JSON but 4.5 MB as Convex counts it is rejected alone, never a 500", async () => {
    const t = backend();
    const data: Record<string, unknown> = {};
    for (let i = 0; i < 62; i++) data[`a${i}`] = new Array(8192).fill(0);
    const events = resealed(envelopes(ORIGIN, [...notes(1), { ...notes(1)[0]!, data }]));
    const result = await ok(await post(t, { origin: ORIGIN, events }));
    expect(result.accepted).toBe(1);
    expect(result.rejected[0]).toMatchObject({ event_id: events[1]!.event_id, code: "invalid_value" });
    expect(result.rejected[0]!.message).toContain("as Convex counts");
  });

  test("a batch over 16 MiB of arguments as Convex counts them is refused with 413, storing nothing", async () => {
    process.env.ATLASD_INGEST_MAX_BYTES = String(8 * 1024 * 1024);
    const t = backend();
    const data = { zeros: new Array(8000).fill(0), more: new Array(8000).fill(0), all: Array.from({ length: 6 }, () => new Array(8000).fill(0)) };
    const events = resealed(envelopes(ORIGIN, notes(32, data))); // 32 x ~576 kB as Convex counts
    const response = await post(t, { origin: ORIGIN, events });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { message: string }).message).toContain("as Convex counts arguments");
    expect(await stored(t)).toBe(0);
  });
});

describe("finding each event's text in a body", () => {
  test("items are cut at top-level commas only, whatever strings and nesting they hold", () => {
    const items = ['{"a":"x,]}\\"y","b":[1,[2,{"c":3}]]}', "{}", '{"events":[1,2]}'];
    const body = `{ "origin" : "o", "events" : [ ${items.join(" ,\n ")} ], "tail": [9] }`;
    expect(rawEvents(body)).toEqual(items);
    expect(rawEvents('{"events":[]}')).toEqual([]);
    expect(rawEvents('{"origin":"events","x":[1]}')).toBeNull();
  });
});
