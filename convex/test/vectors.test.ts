/**
 * Every shared vector (../tests/vectors/*.json, read when the suite runs)
 * and every fixture of this package, posted through the HTTP ingest with
 * transaction limits on: each view must be exactly the vector's rows.
 */
import { describe, expect, test, beforeAll, afterAll } from "vitest";
import { project, rowKeys, ViewRows, contractRow, VIEW_NAMES, type ViewName } from "../functions/lib/project";
import { allViews, backend, envelopes, FIXTURE_DIR, loadVectors, post, sortByKey, TOKEN, VECTOR_DIR } from "./helpers";

const shared = loadVectors(VECTOR_DIR);
const own = loadVectors(FIXTURE_DIR);
const ORIGIN = "0190aaaa-0000-7000-8000-000000000001";

beforeAll(() => {
  process.env.ATLASD_INGEST_TOKEN = TOKEN;
});
afterAll(() => {
  delete process.env.ATLASD_INGEST_TOKEN;
});

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
      const response = await post(t, { origin: ORIGIN, events: events.slice(i, i + step) });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { accepted: number; rejected: unknown[]; high_water: number };
      expect(body.rejected).toEqual([]);
      expect(body.high_water).toBe(Math.min(i + step, events.length));
      accepted += body.accepted;
    }
    expect(accepted).toBe(events.length);
    expect(await allViews(t)).toEqual(vector.expected);
  });

  test("folded without a database gives the same rows", () => {
    const rows = new ViewRows();
    const keys = rowKeys(vector.events);
    for (const k of keys.builds) rows.builds.set(k, { id: null, row: null, dirty: false });
    for (const k of keys.tasks.keys()) rows.tasks.set(k, { id: null, row: null, dirty: false });
    for (const k of keys.patterns) rows.patterns.set(k, { id: null, row: null, dirty: false });
    for (const k of keys.learnings) rows.learnings.set(k, { id: null, row: null, dirty: false });
    for (const e of vector.events) project(rows, e);
    const got: Record<string, unknown> = {};
    for (const view of VIEW_NAMES) {
      const list: Array<Record<string, unknown>> =
        view === "executions"
          ? rows.executions
          : [...(rows[view as Exclude<ViewName, "executions">].values() as Iterable<{ row: object | null }>)]
              .flatMap((s) => (s.row === null ? [] : [s.row as Record<string, unknown>]));
      got[view] = sortByKey(view, list.map((r) => contractRow(view, r)));
    }
    expect(got).toEqual(vector.expected);
  });
});
