/**
 * Which index answers a read of a view (docs/convex.md, "Reading"): every
 * read of `view_rows` is one index range ordered by the view's main time
 * column, never a scan.
 *
 * - no filter: `by_view_time`;
 * - `origin`: `by_view_origin_time`;
 * - `filter` on exactly the view's key columns: `by_view_key` (one row;
 *   `origin` may narrow it too);
 * - `filter` on exactly the columns of one of the view's indexes
 *   (lib/layout.ts): that index, over its slots.
 *
 * Anything else (a column without an index, an index combined with
 * `origin`, an unknown column) is refused with `ConvexError({code:
 * "bad_request"})` naming what the view can filter on.
 */
import { ConvexError, type Value } from "convex/values";
import { indexFor, viewLayout } from "./layout";
import { VIEW_NAMES, VIEWS, rowKey, type ViewInfo } from "./packs";

export type BadRequest = { code: "bad_request"; message: string };

export function badRequest(message: string): never {
  throw new ConvexError<BadRequest>({ code: "bad_request", message });
}

/** An index range of `view_rows`: the index and the values to `.eq()`, field by field, in index order. */
export type ViewRange = { index: string; eq: Array<[field: string, value: Value]>; origin: string | null };

/** The view named `name`, or a `bad_request` naming the views there are. */
export function readableView(name: string): ViewInfo {
  const info = VIEWS.get(name);
  if (info === undefined) badRequest(`unknown view ${JSON.stringify(name)}; one of ${VIEW_NAMES.join(", ")}`);
  return info;
}

/** The column sets an equality filter of `view` may name: its key and each of its indexes. */
export function filterableColumns(view: ViewInfo): string[][] {
  const sets = [[...view.def.key], ...viewLayout(view.name).indexes.map((ix) => [...ix.columns])];
  const seen = new Set<string>();
  return sets.filter((cols) => {
    const id = JSON.stringify([...cols].sort());
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function describe(view: ViewInfo): string {
  return filterableColumns(view)
    .map((cols) => `{${cols.join(", ")}}`)
    .join(", ");
}

/**
 * The index range answering `filter` and `origin` on `view`. `origin` is
 * kept in the answer only where the index cannot hold it (the key lookup),
 * to be checked on the one row that lookup reads.
 */
export function viewRange(view: ViewInfo, filter: Record<string, Value>, origin: string | undefined): ViewRange {
  const columns = Object.keys(filter);
  for (const column of columns) {
    if (!Object.hasOwn(view.def.columns, column)) {
      badRequest(`filter.${column}: view ${view.name} has no such column; its columns: ${view.columns.join(", ")}`);
    }
  }
  if (columns.length === 0) {
    return origin === undefined
      ? { index: "by_view_time", eq: [["view", view.name]], origin: null }
      : { index: "by_view_origin_time", eq: [["view", view.name], ["origin", origin]], origin: null };
  }
  const key = view.def.key;
  if (columns.length === key.length && key.every((column) => Object.hasOwn(filter, column))) {
    return { index: "by_view_key", eq: [["view", view.name], ["key", rowKey(view, filter)]], origin: origin ?? null };
  }
  const plan = indexFor(view.name, columns);
  if (plan === null) {
    badRequest(
      `view ${view.name} has no index for a filter on ${columns.sort().join(", ")}; ` +
        `filter on exactly one of ${describe(view)}`,
    );
  }
  if (origin !== undefined) {
    badRequest(
      `view ${view.name}: origin cannot be combined with a filter on ${columns.sort().join(", ")} ` +
        `(no such index); use one or the other, or filter on the key {${key.join(", ")}}`,
    );
  }
  const eq: Array<[string, Value]> = [["view", view.name]];
  plan.slots.forEach((slot, i) => eq.push([slot, filter[plan.columns[i] as string] as Value]));
  return { index: plan.index, eq, origin: null };
}
