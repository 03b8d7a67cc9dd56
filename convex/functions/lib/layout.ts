/**
 * Where each view's indexed columns sit in `view_rows` (docs/convex.md,
 * "How pack rows are stored"): the index slots `f1`..`f4` and the indexes
 * over them. The fold writes slots with {@link slotValues}; readers pick an
 * index with {@link indexFor}. Both derive from the bundled definitions, so
 * they always agree.
 */
import { EVENTS, VIEWS, viewInfo, type ViewInfo } from "./packs";

export type Slot = "f1" | "f2" | "f3" | "f4";
const SLOTS: readonly Slot[] = ["f1", "f2", "f3", "f4"];
const PAIRS: ReadonlyArray<readonly [Slot, Slot]> = [
  ["f1", "f2"],
  ["f3", "f4"],
];

export type IndexName =
  | "by_view_f1_time"
  | "by_view_f2_time"
  | "by_view_f3_time"
  | "by_view_f4_time"
  | "by_view_f1_f2_time"
  | "by_view_f3_f4_time";

/** An equality index of a view: its columns, the slots that hold them (same order), and its name. */
export type ViewIndex = { readonly columns: readonly string[]; readonly slots: readonly Slot[]; readonly index: IndexName };

export type ViewLayout = {
  /** column -> the slot holding its value. */
  readonly slots: Readonly<Record<string, Slot>>;
  readonly indexes: readonly ViewIndex[];
};

export class LayoutError extends Error {}

/** The indexed column lists of a view, in slot-assignment order. */
function wantedIndexes(view: ViewInfo): string[][] {
  const wanted: string[][] = (view.def.indexes ?? []).map((cols) => [...cols]);
  if (view.def.key.length > 1) wanted.push([view.def.key[0] as string]);
  for (const match of removeMatchColumns(view.name)) wanted.push(match);
  const seen = new Set<string>();
  return wanted.filter((cols) => {
    const id = JSON.stringify(cols);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The `match` column lists of every `remove_matching` aimed at `view`. */
function removeMatchColumns(view: string): string[][] {
  const out: string[][] = [];
  for (const event of EVENTS.values()) {
    for (const action of event.apply) {
      if (action.op === "remove_matching" && action.view === view) out.push(Object.keys(action.match));
    }
  }
  return out;
}

/** The slot layout of `view` (throws {@link LayoutError} when it does not fit). */
export function computeLayout(view: ViewInfo): ViewLayout {
  const slots: Record<string, Slot> = {};
  const used = new Set<Slot>();
  const indexes: ViewIndex[] = [];
  for (const columns of wantedIndexes(view)) {
    if (columns.some((c) => view.def.columns[c] === "string_list")) continue;
    if (columns.length === 1) {
      const column = columns[0] as string;
      let slot = slots[column];
      if (slot === undefined) {
        slot = SLOTS.find((s) => !used.has(s));
        if (slot === undefined) throw new LayoutError(`view ${view.name}: more than ${SLOTS.length} indexed columns`);
        slots[column] = slot;
        used.add(slot);
      }
      indexes.push({ columns, slots: [slot], index: `by_view_${slot}_time` as IndexName });
    } else if (columns.length === 2) {
      const [a, b] = columns as [string, string];
      let pair = PAIRS.find(([x, y]) => slots[a] === x && slots[b] === y);
      if (pair === undefined) {
        pair = PAIRS.find(([x, y]) => !used.has(x) && !used.has(y));
        if (pair === undefined || slots[a] !== undefined || slots[b] !== undefined) {
          throw new LayoutError(`view ${view.name}: no free pair of index slots for ${columns.join(", ")}`);
        }
        slots[a] = pair[0];
        slots[b] = pair[1];
        used.add(pair[0]);
        used.add(pair[1]);
      }
      indexes.push({ columns, slots: pair, index: `by_view_${pair[0]}_${pair[1]}_time` as IndexName });
      // The pair's first column alone is an index too (an equality prefix).
      indexes.push({ columns: [a], slots: [pair[0]], index: `by_view_${pair[0]}_time` as IndexName });
    } else {
      throw new LayoutError(`view ${view.name}: an index of ${columns.length} columns (at most 2 are supported)`);
    }
  }
  return { slots, indexes };
}

const LAYOUTS = new Map<string, ViewLayout>([...VIEWS.values()].map((view) => [view.name, computeLayout(view)]));

/** The slot layout of the view named `name`. */
export function viewLayout(name: string): ViewLayout {
  const layout = LAYOUTS.get(name);
  if (layout === undefined) viewInfo(name); // throws the unknown-view error
  return layout as ViewLayout;
}

/**
 * The index answering an equality filter on exactly `columns` (any order)
 * of `view`, with the slots to `.eq()` in index order; null when the view
 * has no such index.
 */
export function indexFor(view: string, columns: readonly string[]): { index: IndexName; slots: Slot[]; columns: string[] } | null {
  const wanted = [...new Set(columns)].sort();
  for (const ix of viewLayout(view).indexes) {
    if (ix.columns.length === wanted.length && [...ix.columns].sort().every((c, i) => c === wanted[i])) {
      return { index: ix.index, slots: [...ix.slots], columns: [...ix.columns] };
    }
  }
  return null;
}

/** The slot fields of a row of `view`: `{f1: row.status, ...}` for the slots the view uses. */
export function slotValues(view: string, row: Readonly<Record<string, unknown>>): Partial<Record<Slot, unknown>> {
  const out: Partial<Record<Slot, unknown>> = {};
  for (const [column, slot] of Object.entries(viewLayout(view).slots)) out[slot] = row[column] ?? null;
  return out;
}
