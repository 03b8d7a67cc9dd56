/**
 * Every shared vector (../tests/vectors/**.json, read when the suite runs)
 * and every fixture of this package, posted through the HTTP ingest with
 * transaction limits on: each view must be exactly the vector's rows,
 * whatever the batch size and whatever order the events arrive in.
 */
import { describe, expect, test, beforeAll, afterAll } from "vitest";
import {
  allViews, backend, envelopes, expectedViews, FIXTURE_DIR, loadVectors, post, TOKEN, VECTOR_DIR, type Backend, type Vector,
} from "./helpers";
import type { Envelope } from "../functions/lib/envelope";

const shared = loadVectors(VECTOR_DIR);
const own = loadVectors(FIXTURE_DIR);
const ORIGIN = "0190aaaa-0000-7000-8000-000000000001";

beforeAll(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
});
afterAll(() => {
  delete process.env.ATLASD_INGEST_TOKEN;
});

async function send(t: Backend, events: Envelope[]): Promise<{ accepted: number; rejected: unknown[]; high_water: number }> {
  const response = await post(t, { origin: ORIGIN, events });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { accepted: number; rejected: unknown[]; high_water: number };
  expect(body.rejected).toEqual([]);
  return body;
}

/** Posts the events one per POST in `order` (indexes into the vector's events). */
async function deliver(vector: Vector, order: readonly number[]): Promise<Backend> {
  const t = backend();
  const events = envelopes(ORIGIN, vector.events);
  let accepted = 0;
  for (const i of order) accepted += (await send(t, [events[i] as Envelope])).accepted;
  expect(accepted).toBe(events.length);
  return t;
}

test("the shared vectors are there to run", () => {
  expect(shared.length).toBeGreaterThan(0);
});

describe.each([...shared, ...own])("vector %s", (_file, vector) => {
  test.each([0, 1, 3])("posted in batches of %i (0: all at once) gives the expected views", async (size) => {
    const t = backend();
    const events = envelopes(ORIGIN, vector.events);
    const step = size === 0 ? Math.max(events.length, 1) : size;
    let accepted = 0;
    for (let i = 0; i < events.length; i += step) {
      const body = await send(t, events.slice(i, i + step));
      expect(body.high_water).toBe(Math.min(i + step, events.length));
      accepted += body.accepted;
    }
    expect(accepted).toBe(events.length);
    expect(await allViews(t)).toEqual(expectedViews(vector));
  });

  test("delivered in its arrival order (default: in order) gives the expected views", async () => {
    const order = vector.arrival ?? vector.events.map((_, i) => i);
    expect([...order].sort((a, b) => a - b)).toEqual(vector.events.map((_, i) => i));
    const t = await deliver(vector, order);
    expect(await allViews(t)).toEqual(expectedViews(vector));
  });

  test("delivered newest first, one event per POST, gives the expected views", async () => {
    const t = await deliver(vector, vector.events.map((_, i) => vector.events.length - 1 - i));
    expect(await allViews(t)).toEqual(expectedViews(vector));
  });
});
