/**
 * read:view over the pack rows table: 20,000 rows paged by 100 both ways
 * give every row exactly once in time order, through every index the view
 * has; filters without an index are refused; every view of every pack reads
 * the same way. Transaction limits are on; rows are inserted directly.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { api } from "../functions/_generated/api";
import { slotValues } from "../functions/lib/layout";
import { rowKey, VIEW_NAMES, VIEWS, type ViewInfo } from "../functions/lib/packs";
import { filterableColumns } from "../functions/lib/viewquery";
import { backend, TOKEN, type Backend } from "./helpers";
import { installReadCache } from "./fastread";
import { allPages, configure, insertChunked, READ_TOKEN, refusal } from "./readers";

const ORIGINS = ["0190cccc-0000-7000-8000-000000000001", "0190cccc-0000-7000-8000-000000000002"];
const STATUSES = ["pending", "running", "done", "failed"];
const ROWS = 20_000;
const tasks = VIEWS.get("tasks") as ViewInfo;

type Row = Record<string, unknown>;

/** A full row of `view`: every column, null (or [] for lists) unless given. */
function fullRow(view: ViewInfo, values: Row): Row {
  return Object.fromEntries(
    view.columns.map((c) => [c, c in values ? values[c] : view.def.columns[c] === "string_list" ? [] : null]),
  );
}

/** The `view_rows` document of `row`, as the fold stores it. */
function stored(view: ViewInfo, row: Row, origin: string): Row {
  const time = row[view.def.time];
  return { view: view.name, key: rowKey(view, row), origin, row, time: time ?? null, ...slotValues(view.name, row) };
}

/** Task i: 50 builds, statuses and origins cycling, times a permutation with pairs of equal times. */
function task(i: number): { row: Row; origin: string } {
  const time = 1_000_000 + Math.floor(((i * 7919) % ROWS) / 2);
  const row = fullRow(tasks, {
    build_id: `b${i % 50}`,
    task_id: `t${i}`,
    title: `task ${i}`,
    status: STATUSES[i % STATUSES.length],
    dependencies: [],
    attempts: 0,
    created_at: time,
    updated_at: time,
  });
  return { row, origin: ORIGINS[i % 2] as string };
}

let t: Backend;
const all: Array<{ row: Row; origin: string }> = [];

beforeAll(async () => {
  // Stock convex-test sorts the whole table for every page: 200 pages would take minutes.
  installReadCache();
  configure({ read: READ_TOKEN, ingest: TOKEN });
  t = backend();
  for (let i = 0; i < ROWS; i++) all.push(task(i));
  await insertChunked(t, "view_rows", all.map(({ row, origin }) => stored(tasks, row, origin)));
  // Rows of another view sharing the table and the same slot values must never show up.
  const builds = VIEWS.get("builds") as ViewInfo;
  const others = Array.from({ length: 300 }, (_, i) =>
    stored(builds, fullRow(builds, { build_id: `b${i}`, status: "running", started_at: 1_000_000 + i, tasks_total: 0, tasks_done: 0, tasks_failed: 0 }), ORIGINS[0] as string),
  );
  await insertChunked(t, "view_rows", others);
}, 120_000);
afterAll(() => configure({}));

type Args = { view: string; order?: "asc" | "desc"; filter?: Row; origin?: string };

function readAll(args: Args, numItems = 100) {
  return allPages((cursor) =>
    t.query(api.read.view, { ...args, paginationOpts: { numItems, cursor }, token: READ_TOKEN }),
  );
}

const id = (r: Row): string => `${String(r.build_id)}/${String(r.task_id)}`;

/** Checks `rows` are exactly `expected` (each once) in `order` of created_at. */
function expectExactlyOnceInOrder(rows: Row[], expected: Array<{ row: Row; origin: string }>, order: "asc" | "desc"): void {
  expect(rows.length).toBe(expected.length);
  expect(new Set(rows.map(id)).size).toBe(rows.length);
  expect(new Set(rows.map(id))).toEqual(new Set(expected.map(({ row }) => id(row))));
  const misordered: string[] = [];
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1]!.created_at as number, rows[i]!.created_at as number];
    if (order === "asc" ? a > b : a < b) misordered.push(`row ${i}: ${a} then ${b}`);
  }
  expect(misordered).toEqual([]);
}

describe("read:view pages a 20,000-row view", () => {
  test.each(["asc", "desc"] as const)("by 100 in %s order: every row exactly once, ordered by the main time column", async (order) => {
    const { rows, pages } = await readAll({ view: "tasks", order });
    expectExactlyOnceInOrder(rows, all, order);
    expect(pages).toBeGreaterThanOrEqual(ROWS / 100);
    expect(pages).toBeLessThanOrEqual(ROWS / 100 + 1);
  });

  test("rows carry exactly the view's columns plus the origin that created them", async () => {
    const { page } = await t.query(api.read.view, { view: "tasks", paginationOpts: { numItems: 5, cursor: null }, token: READ_TOKEN });
    expect(page).toHaveLength(5);
    for (const row of page) {
      expect(Object.keys(row).sort()).toEqual([...tasks.columns, "origin"].sort());
      const source = all.find(({ row: r }) => id(r) === id(row))!;
      expect(row).toEqual({ ...source.row, origin: source.origin });
    }
  });

  test.each(["asc", "desc"] as const)("an indexed equality filter (status) in %s order gives exactly its rows", async (order) => {
    const { rows } = await readAll({ view: "tasks", order, filter: { status: "running" } });
    expectExactlyOnceInOrder(rows, all.filter(({ row }) => row.status === "running"), order);
  });

  test("a filter on the other indexed column (build_id) gives exactly its rows", async () => {
    const { rows } = await readAll({ view: "tasks", filter: { build_id: "b7" } });
    expectExactlyOnceInOrder(rows, all.filter(({ row }) => row.build_id === "b7"), "asc");
  });

  test.each(["asc", "desc"] as const)("origin narrows to one machine's rows, in %s order", async (order) => {
    const { rows } = await readAll({ view: "tasks", order, origin: ORIGINS[1] });
    expectExactlyOnceInOrder(rows, all.filter(({ origin }) => origin === ORIGINS[1]), order);
    expect(new Set(rows.map((r) => r.origin))).toEqual(new Set([ORIGINS[1]]));
  });

  test("a filter on the whole key finds the one row, and origin can narrow it", async () => {
    const filter = { build_id: "b3", task_id: "t153" };
    const { rows } = await readAll({ view: "tasks", filter });
    expect(rows.map(id)).toEqual(["b3/t153"]);
    const mine = (await readAll({ view: "tasks", filter, origin: ORIGINS[1] })).rows;
    expect(mine.map(id)).toEqual(["b3/t153"]);
    expect((await readAll({ view: "tasks", filter, origin: ORIGINS[0] })).rows).toEqual([]);
  });
});

test("the read cache of this suite changes no answer", async () => {
  installReadCache({ verify: true });
  try {
    const { rows } = await readAll({ view: "tasks", filter: { build_id: "b11" }, order: "desc" });
    expectExactlyOnceInOrder(rows, all.filter(({ row }) => row.build_id === "b11"), "desc");
    let cursor: string | null = null;
    for (let i = 0; i < 3; i++) {
      const page: { continueCursor: string } = await t.query(api.read.view, { view: "tasks", paginationOpts: { numItems: 100, cursor }, token: READ_TOKEN });
      cursor = page.continueCursor;
    }
  } finally {
    installReadCache();
  }
});

test("an answer says when its view is being rebuilt after a definition change", async () => {
  const local = backend();
  const builds = VIEWS.get("builds") as ViewInfo;
  const read = async (): Promise<boolean> =>
    (await local.query(api.read.view, { view: "builds", paginationOpts: { numItems: 1, cursor: null }, token: READ_TOKEN })).rebuilding;
  expect(await read()).toBe(false);
  const id = await local.run((ctx) => ctx.db.insert("view_defs", { view: "builds", hash: builds.hash, rebuilding: false }));
  expect(await read()).toBe(false);
  await local.run((ctx) => ctx.db.patch(id, { rebuilding: true }));
  expect(await read()).toBe(true);
  await local.run((ctx) => ctx.db.patch(id, { rebuilding: false, hash: "an-older-definition" }));
  expect(await read()).toBe(true);
});

describe("read:view refuses what no index answers", () => {
  const cases: Array<[string, Args, string]> = [
    ["an unknown view", { view: "nope" }, "unknown view"],
    ["an unknown column", { view: "tasks", filter: { colour: "red" } }, "no such column"],
    ["an inherited property name as a column", { view: "tasks", filter: { constructor: "x" } }, "no such column"],
    ["a column without an index", { view: "tasks", filter: { title: "task 1" } }, "no index"],
    ["part of an index pair plus another column", { view: "tasks", filter: { status: "done", title: "x" } }, "no index"],
    ["a list column (contains-all has no index)", { view: "patterns", filter: { tags: ["a"] } }, "no index"],
    ["an indexed filter together with origin", { view: "tasks", filter: { status: "done" }, origin: ORIGINS[0] as string }, "origin cannot be combined"],
  ];
  test.each(cases)("%s", async (_name, args, message) => {
    const data = await refusal(t.query(api.read.view, { ...args, paginationOpts: { numItems: 10, cursor: null }, token: READ_TOKEN }));
    expect(data.code).toBe("bad_request");
    expect(data.message).toContain(message);
  });
});

describe("every view of every pack is readable the same way", () => {
  test.each(VIEW_NAMES.map((name) => [name]))("%s: whole, by origin, and by each filterable column set", async (name) => {
    const view = VIEWS.get(name) as ViewInfo;
    const local = backend();
    const rows = [0, 1, 2].map((i) => {
      const values: Row = {};
      for (const [column, type] of Object.entries(view.def.columns)) {
        values[column] =
          type === "time" || type === "integer" || type === "number" ? 100 + i : type === "boolean" ? i % 2 === 0 : type === "string_list" ? [`x${i}`] : type === "json" ? { i } : `${column}-${i}`;
      }
      return fullRow(view, values);
    });
    await insertChunked(local, "view_rows", rows.map((row, i) => stored(view, row, ORIGINS[i % 2] as string)));
    const read = async (args: Partial<Args>): Promise<Row[]> =>
      (await local.query(api.read.view, { view: name, ...args, paginationOpts: { numItems: 2, cursor: null }, token: READ_TOKEN })).page;
    const page = await read({ order: "desc" });
    expect(page.map((r) => r[view.def.time])).toEqual([102, 101]);
    expect((await read({ origin: ORIGINS[1] })).map((r) => r[view.def.key[0] as string])).toEqual([rows[1]![view.def.key[0] as string]]);
    for (const columns of filterableColumns(view)) {
      const filter = Object.fromEntries(columns.map((c) => [c, rows[2]![c]]));
      const found = await read({ filter });
      expect(found, JSON.stringify(filter)).toEqual([{ ...rows[2], origin: ORIGINS[0] }]);
    }
  });
});

test("the filter table of docs/convex.md names every view, its main time and its filterable column sets", () => {
  const doc = readFileSync(new URL("../../docs/convex.md", import.meta.url), "utf8");
  const table = doc.split("| view | main time | filter on |")[1]!.split("\n\n")[0]!;
  const documented = table
    .split("\n")
    .filter((line) => /^\| `/.test(line))
    .map((line) => line.split("|").map((cell) => cell.trim().replaceAll("`", "")));
  const expected = VIEW_NAMES.map((name) => {
    const view = VIEWS.get(name) as ViewInfo;
    return ["", name, view.def.time, filterableColumns(view).map((cols) => cols.join(", ")).join("; "), ""];
  });
  expect([...documented].sort()).toEqual([...expected].sort());
});
