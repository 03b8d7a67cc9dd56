/**
 * Reading pack view rows back for the internal queries (`views:*`,
 * `inspect:view`): always through an index of `view_rows`, bounded.
 */
import type { QueryCtx } from "../_generated/server";
import { jsonEqual, type Row } from "./fold";
import { indexFor } from "./layout";
import { viewInfo } from "./packs";

/** Default and maximum rows per answer, as the daemon's `query`. */
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10000;

export function bounded(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new Error(`limit must be an integer in 1..${MAX_LIMIT}`);
  }
  return limit;
}

/** Whether `row` passes `filter`: equality, contains-all on list columns. */
export function passes(row: Row, filter: Readonly<Record<string, unknown>>): boolean {
  return Object.entries(filter).every(([column, wanted]) => {
    const value = row[column];
    if (Array.isArray(value) && !Array.isArray(wanted)) return value.includes(wanted);
    if (Array.isArray(value) && Array.isArray(wanted)) return wanted.every((item) => value.includes(item));
    return jsonEqual(value ?? null, wanted);
  });
}

/**
 * Up to `limit` rows of `view` matching `filter`, oldest first (the view's
 * main time column). The filter's indexed columns narrow through an index;
 * the rest are checked in code over at most `10 * limit` rows, so one call
 * stays bounded.
 */
export async function viewRows(
  ctx: QueryCtx,
  view: string,
  filter: Readonly<Record<string, unknown>> = {},
  limit?: number,
): Promise<Row[]> {
  const info = viewInfo(view);
  for (const column of Object.keys(filter)) {
    if (!(column in info.def.columns)) throw new Error(`view ${view} has no column ${JSON.stringify(column)}`);
  }
  const max = bounded(limit);
  const scalar = Object.keys(filter).filter((c) => info.def.columns[c] !== "string_list" && filter[c] !== undefined);
  // The widest index the filter's scalar columns allow: a pair, else one column.
  let plan = indexFor(view, scalar);
  for (let i = 0; plan === null && i < scalar.length; i += 1) plan = indexFor(view, [scalar[i] as string]);
  const query =
    plan === null
      ? ctx.db.query("view_rows").withIndex("by_view_time", (q) => q.eq("view", view))
      : ctx.db.query("view_rows").withIndex(plan.index, (q) => {
          let range = q.eq("view", view) as unknown as { eq(field: string, value: unknown): unknown };
          plan.slots.forEach((slot, i) => {
            range = range.eq(slot, filter[plan.columns[i] as string] ?? null) as typeof range;
          });
          return range as never;
        });
  const out: Row[] = [];
  let scanned = 0;
  for await (const doc of query) {
    const row = doc.row as Row;
    if (passes(row, filter)) out.push(row);
    scanned += 1;
    if (out.length >= max || scanned >= max * 10) break;
  }
  return out;
}
