/**
 * The bundled pack definitions: the committed copy equals what
 * `npm run packs` writes from atlasd/packs/builtin, every view lays out in
 * `view_rows`' index slots, and each view's hash follows its pack.
 */
import { expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { bundleText, BUNDLE, canonicalJson } from "../tools/bundle_packs";
import { computeLayout, indexFor, viewLayout } from "../functions/lib/layout";
import { ENGINE_REVISION, VIEW_NAMES, VIEWS } from "../functions/lib/packs";

test("the bundled pack definitions are those of atlasd/packs/builtin (run npm run packs)", () => {
  expect(readFileSync(BUNDLE, "utf8")).toBe(bundleText());
});

test("every built-in pack and view is bundled", () => {
  const packs = new Set([...VIEWS.values()].map((view) => view.pack));
  expect([...packs].sort()).toEqual(["agents", "assets", "atlas", "deployments", "mastra", "workflows"]);
  expect(VIEW_NAMES.length).toBe(15);
});

test("canonical JSON sorts keys at every level and drops whitespace", () => {
  expect(canonicalJson({ b: [1, { d: 2, c: "x" }], a: null })).toBe('{"a":null,"b":[1,{"c":"x","d":2}]}');
});

test("every view's indexed columns fit the index slots", () => {
  for (const view of VIEW_NAMES) {
    const layout = computeLayout(VIEWS.get(view)!);
    for (const columns of VIEWS.get(view)!.def.indexes ?? []) {
      if (columns.some((c) => VIEWS.get(view)!.def.columns[c] === "string_list")) continue;
      expect(indexFor(view, columns), `${view} ${columns.join(",")}`).not.toBeNull();
    }
    expect(Object.keys(layout.slots).length).toBeLessThanOrEqual(4);
  }
});

test("a multi-column key's first column and a remove_matching target are indexed too", () => {
  expect(indexFor("tasks", ["build_id"])).toMatchObject({ index: expect.stringMatching(/^by_view_f\d_time$/) });
  expect(indexFor("messages", ["thread_id"])).not.toBeNull();
  expect(indexFor("executions", ["task_id", "build_id"])).toEqual({
    index: "by_view_f1_f2_time",
    slots: ["f1", "f2"],
    columns: ["build_id", "task_id"],
  });
  expect(indexFor("patterns", ["name"])).toBeNull();
});

test("an unknown view is refused by name", () => {
  expect(() => viewLayout("nope")).toThrow(/unknown view "nope"/);
});

test("a view's hash is its pack's content version with the engine revision", () => {
  const builds = VIEWS.get("builds")!;
  const tasks = VIEWS.get("tasks")!;
  expect(builds.hash).toBe(tasks.hash);
  expect(builds.hash).toMatch(new RegExp(`^[0-9a-f]{13}-${ENGINE_REVISION}$`));
  expect(VIEWS.get("threads")!.hash).not.toBe(builds.hash);
});
