/**
 * The pack interpreter inside a mutation: folds stored events into
 * `view_rows` (docs/convex.md, "The fold").
 *
 * One {@link Engine} serves one transaction. It keeps every row it touches
 * in memory, keyed by (view, key), so each row is read once and written
 * once however many events of the batch touch it:
 * - {@link Engine.prefetch} reads, concurrently, every row the events
 *   address by key, then the counting rows the stored versions of those
 *   rows count towards (a row may move to another counting row);
 * - {@link Engine.fold} applies one event's actions in order; derived counts
 *   move by +1/-1 on the counting row as counted rows come, go or change;
 * - an event older than what its origin already had folded (a late
 *   arrival) is not applied in place: each row it addresses is marked, and
 *   {@link Engine.refold} recomputes those rows from their stored events in
 *   seq order (`event_rows`), so the view equals a replay whatever the
 *   arrival order;
 * - {@link Engine.flush} writes each changed row once.
 */
import type { Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import {
  actionKey,
  applyUpsert,
  existenceOnly,
  holds,
  jsonEqual,
  matchKey,
  newRow,
  ordered,
  projectable,
  readAs,
  rowMatches,
  rowMatchKey,
  sourceValue,
  type FoldEvent,
  type Row,
} from "./fold";
import { indexFor, slotValues } from "./layout";
import { EVENTS, VIEWS, type ColumnType, type CountRef, type ViewInfo } from "./packs";

/** A stored event as the engine folds it: with its document id and when it arrived. */
export type StoredEvent = FoldEvent & {
  _id: Id<"events">;
  /** `_creationTime` of the stored event; events of the running batch arrive last. */
  arrival: number;
};

/** Whether `event`'s actions on `view` are folded by this transaction. */
export type FoldsView = (view: string, event: FoldEvent) => boolean;

/** Stored events of one row a re-fold reads at most; a busier row is left to a rebuild of its view. */
export const REFOLD_MAX_EVENTS = 1000;
/** Stored events all re-folds of one transaction read at most (each is one `db.get`). */
export const REFOLD_BUDGET = 2000;

type Entry = {
  view: ViewInfo;
  key: string;
  id: Id<"view_rows"> | null;
  stored: Row | null;
  row: Row | null;
  origin: string | null;
  dirty: boolean;
};

type EventRow = { view: string; key: string; origin: string; seq: number; event: Id<"events"> };

class RefoldOverflow extends Error {}

function entryId(view: string, key: string): string {
  return `${view}\u0000${key}`;
}

function whereHolds(ref: CountRef, row: Row): boolean {
  return Object.entries(ref.def.where ?? {}).every(([column, values]) => values.some((v) => jsonEqual(v, row[column] ?? null)));
}

function countingKey(ref: CountRef, row: Row | null): string | null {
  if (row === null || !whereHolds(ref, row)) return null;
  return JSON.stringify(ref.def.by.map((column) => row[column] ?? null));
}

/** The `match` column lists of every `remove_matching` aimed at `view`. */
function matchColumnLists(view: string): string[][] {
  const out: string[][] = [];
  for (const def of EVENTS.values()) {
    for (const action of def.apply) if (action.op === "remove_matching" && action.view === view) out.push(Object.keys(action.match));
  }
  return out;
}
const MATCH_COLUMNS = new Map([...VIEWS.keys()].map((view) => [view, matchColumnLists(view)]));

/** Events in fold order: each origin's in seq order; origins interleaved by when their events arrived. */
export function foldOrder(events: readonly StoredEvent[]): StoredEvent[] {
  const groups = new Map<string, StoredEvent[]>();
  for (const e of events) {
    const list = groups.get(e.origin) ?? [];
    list.push(e);
    groups.set(e.origin, list);
  }
  // A late event takes the place of its origin's first later event: the
  // group's head is due at the earliest arrival of what is left of it.
  const lanes = [...groups.entries()].map(([origin, list]) => {
    list.sort((a, b) => a.seq - b.seq);
    const due = new Array<number>(list.length);
    let min = Infinity;
    for (let i = list.length - 1; i >= 0; i -= 1) {
      min = Math.min(min, (list[i] as StoredEvent).arrival);
      due[i] = min;
    }
    return { origin, list, due, at: 0 };
  });
  const out: StoredEvent[] = [];
  for (;;) {
    let best: (typeof lanes)[number] | null = null;
    for (const lane of lanes) {
      if (lane.at >= lane.list.length) continue;
      if (best === null) best = lane;
      else {
        const a = lane.due[lane.at] as number;
        const b = best.due[best.at] as number;
        if (a < b || (a === b && lane.origin < best.origin)) best = lane;
      }
    }
    if (best === null) return out;
    out.push(best.list[best.at] as StoredEvent);
    best.at += 1;
  }
}

export class Engine {
  private readonly rows = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly marked = new Map<string, Entry>();
  private readonly eventRows: EventRow[] = [];
  private readonly recorded = new Set<string>();
  private readonly batch = new Map<string, StoredEvent>();
  private refoldReads = 0;
  /** Views whose late rows were too busy to re-fold here: they need a rebuild. */
  readonly overflow = new Set<string>();

  constructor(
    private readonly ctx: MutationCtx,
    private readonly folds: FoldsView,
  ) {}

  /** The row of `view` with `key`, read once per transaction. */
  private entry(view: ViewInfo, key: string): Promise<Entry> {
    const id = entryId(view.name, key);
    const known = this.rows.get(id);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.loading.get(id);
    if (pending === undefined) {
      pending = this.ctx.db
        .query("view_rows")
        .withIndex("by_view_key", (q) => q.eq("view", view.name).eq("key", key))
        .unique()
        .then((doc) => {
          const row = doc === null ? null : (doc.row as Row);
          const entry: Entry = { view, key, id: doc?._id ?? null, stored: row, row, origin: doc?.origin ?? null, dirty: false };
          this.rows.set(id, entry);
          return entry;
        });
      this.loading.set(id, pending);
    }
    return pending;
  }

  /** The row (view, key) addressed by each keyed action the events would run. */
  private addressed(events: readonly StoredEvent[]): Array<[ViewInfo, string]> {
    const out = new Map<string, [ViewInfo, string]>();
    for (const event of events) {
      const def = EVENTS.get(event.type);
      if (def === undefined || !projectable(def, event)) continue;
      for (const action of def.apply) {
        if (action.op === "remove_matching" || !this.folds(action.view, event) || !holds(action.when, event)) continue;
        const view = VIEWS.get(action.view) as ViewInfo;
        const key = actionKey(view, action.key, event);
        out.set(entryId(view.name, key), [view, key]);
      }
    }
    return [...out.values()];
  }

  /** Reads every row `events` address by key, then the counting rows their stored versions count towards. */
  async prefetch(events: readonly StoredEvent[]): Promise<void> {
    for (const event of events) this.batch.set(event._id, event);
    const loaded = await Promise.all(this.addressed(events).map(([view, key]) => this.entry(view, key)));
    const counting = new Map<string, [ViewInfo, string]>();
    for (const entry of loaded) {
      for (const ref of entry.view.countedBy) {
        const key = countingKey(ref, entry.stored);
        const view = VIEWS.get(ref.view) as ViewInfo;
        if (key !== null) counting.set(entryId(view.name, key), [view, key]);
      }
    }
    await Promise.all([...counting.values()].map(([view, key]) => this.entry(view, key)));
  }

  /** Sets an entry's row, keeping derived counts in step. */
  private async change(entry: Entry, row: Row | null, origin: string | null): Promise<void> {
    const before = entry.row;
    if (before === null && row === null) return;
    if (before !== null && row !== null && jsonEqual(before, row)) return;
    entry.row = row;
    if (row !== null && (before === null || origin !== null)) entry.origin = origin ?? entry.origin;
    entry.dirty = true;
    for (const ref of entry.view.countedBy) {
      const was = countingKey(ref, before);
      const now = countingKey(ref, row);
      if (was === now) continue;
      const counting = VIEWS.get(ref.view) as ViewInfo;
      if (was !== null) await this.bump(counting, was, ref.column, -1);
      if (now !== null) await this.bump(counting, now, ref.column, 1);
    }
  }

  /** A count change on the counting row, if it exists (a count never creates a row). */
  private async bump(view: ViewInfo, key: string, column: string, by: number): Promise<void> {
    const entry = await this.entry(view, key);
    if (entry.row === null) return;
    const current = typeof entry.row[column] === "number" ? (entry.row[column] as number) : 0;
    entry.row = { ...entry.row, [column]: current + by };
    entry.dirty = true;
  }

  private record(view: string, key: string, event: StoredEvent): void {
    const id = `${entryId(view, key)}\u0000${event._id}`;
    if (this.recorded.has(id)) return;
    this.recorded.add(id);
    this.eventRows.push({ view, key, origin: event.origin, seq: event.seq, event: event._id });
  }

  private async mark(view: ViewInfo, key: string): Promise<void> {
    this.marked.set(entryId(view.name, key), await this.entry(view, key));
  }

  /**
   * Marks the rows of `view` its origin wrote after `event`: a late removal
   * by match also removes rows that matched at its seq and have moved since.
   */
  private async markWrittenAfter(view: ViewInfo, event: StoredEvent): Promise<void> {
    const docs = await this.ctx.db
      .query("event_rows")
      .withIndex("by_view_origin_seq", (q) => q.eq("view", view.name).eq("origin", event.origin).gt("seq", event.seq))
      .take(REFOLD_MAX_EVENTS + 1);
    if (docs.length > REFOLD_MAX_EVENTS) {
      this.overflow.add(view.name);
      return;
    }
    await Promise.all(docs.filter((doc) => !doc.key.startsWith("match:")).map((doc) => this.mark(view, doc.key)));
  }

  /** Rows of `view` whose columns equal what `match` asks for: stored ones (by index) and those of this batch. */
  private async matching(view: ViewInfo, match: Record<string, string>, event: StoredEvent): Promise<Entry[]> {
    const columns = Object.keys(match);
    const plan = indexFor(view.name, columns);
    if (plan === null) throw new Error(`view ${view.name} has no index on ${columns.join(", ")}`);
    const values = plan.columns.map((column) =>
      readAs(sourceValue(event, match[column] as string), view.def.columns[column] as ColumnType),
    );
    const docs = await this.ctx.db
      .query("view_rows")
      .withIndex(plan.index, (q) => {
        let range = q.eq("view", view.name) as unknown as { eq(field: string, value: unknown): unknown };
        plan.slots.forEach((slot, i) => {
          range = range.eq(slot, values[i]) as typeof range;
        });
        return range as never;
      })
      .collect();
    for (const doc of docs) {
      const id = entryId(view.name, doc.key);
      const pending = this.loading.get(id);
      if (pending !== undefined) await pending; // one entry per row, however it was first read
      if (!this.rows.has(id)) {
        const row = doc.row as Row;
        this.rows.set(id, { view, key: doc.key, id: doc._id, stored: row, row, origin: doc.origin, dirty: false });
      }
    }
    return [...this.rows.values()].filter((e) => e.view === view && e.row !== null && rowMatches(match, view, event, e.row));
  }

  /**
   * Folds one event. `late`: the event's origin had already folded a later
   * seq, so the rows it addresses are re-folded by {@link refold} instead.
   */
  async fold(event: StoredEvent, late: boolean): Promise<void> {
    this.batch.set(event._id, event);
    const def = EVENTS.get(event.type);
    if (def === undefined || !projectable(def, event)) return;
    for (const action of def.apply) {
      if (!this.folds(action.view, event) || !holds(action.when, event)) continue;
      const view = VIEWS.get(action.view) as ViewInfo;
      if (action.op === "remove_matching") {
        this.record(view.name, matchKey(action.match, view, event), event);
        const rows = await this.matching(view, action.match, event);
        for (const entry of rows) {
          if (late) await this.mark(view, entry.key);
          else await this.change(entry, null, null);
        }
        if (late) await this.markWrittenAfter(view, event);
        continue;
      }
      const key = actionKey(view, action.key, event);
      // Rows one event alone writes, and rows that only ever come into being,
      // end the same whatever the order: no bookkeeping, no re-fold.
      const orderFree = view.keyedByEvent || (action.op === "upsert" && existenceOnly(action) && !view.removable);
      if (!orderFree) this.record(view.name, key, event);
      if (late && !orderFree) {
        await this.mark(view, key);
        continue;
      }
      const entry = await this.entry(view, key);
      if (action.op === "remove") {
        await this.change(entry, null, null);
      } else {
        const created = entry.row === null;
        const base = entry.row ?? newRow(view, key);
        await this.change(entry, applyUpsert(view, action, event, base), created ? event.origin : null);
      }
    }
  }

  /** Writes the `event_rows` of this transaction so far. */
  private async writeEventRows(): Promise<void> {
    const rows = this.eventRows.splice(0);
    await Promise.all(rows.map((r) => this.ctx.db.insert("event_rows", r)));
  }

  /** The stored event of an `event_rows` document (the batch's own from memory). */
  private async storedEvent(id: Id<"events">): Promise<StoredEvent | null> {
    const own = this.batch.get(id);
    if (own !== undefined) return own;
    this.refoldReads += 1;
    if (this.refoldReads > REFOLD_BUDGET) throw new RefoldOverflow();
    const doc = await this.ctx.db.get(id);
    if (doc === null) return null;
    const { event_id, type, data, recorded_at, occurred_at, origin, seq } = doc;
    return {
      event_id, type, data: data as Record<string, unknown>, recorded_at, origin, seq, _id: doc._id, arrival: doc._creationTime,
      ...(occurred_at === undefined ? {} : { occurred_at }),
    };
  }

  /** The row `key` of `view` as a replay of `events` (in fold order) leaves it, and the match keys it passed through. */
  private replay(view: ViewInfo, key: string, events: readonly StoredEvent[]): { row: Row | null; origin: string | null; matchKeys: Set<string> } {
    let row: Row | null = null;
    let origin: string | null = null;
    const matchKeys = new Set<string>();
    const lists = MATCH_COLUMNS.get(view.name) ?? [];
    for (const event of events) {
      const def = EVENTS.get(event.type);
      if (def === undefined || !projectable(def, event)) continue;
      for (const action of def.apply) {
        if (action.view !== view.name || !this.folds(view.name, event) || !holds(action.when, event)) continue;
        if (action.op === "remove_matching") {
          if (row !== null && rowMatches(action.match, view, event, row)) row = null;
        } else if (actionKey(view, action.key, event) === key) {
          if (action.op === "remove") row = null;
          else {
            if (row === null) origin = event.origin;
            row = applyUpsert(view, action, event, row ?? newRow(view, key));
          }
        }
        if (row !== null) for (const columns of lists) matchKeys.add(rowMatchKey(columns, row));
      }
    }
    return { row, origin, matchKeys };
  }

  /** Recomputes one marked row from its stored events in seq order. */
  private async refoldRow(entry: Entry): Promise<void> {
    const { view, key } = entry;
    const byId = new Map<string, Id<"events">>();
    const fetched = new Set<string>();
    const fetch = async (k: string): Promise<boolean> => {
      if (fetched.has(k)) return false;
      fetched.add(k);
      const docs = await this.ctx.db
        .query("event_rows")
        .withIndex("by_view_key_origin_seq", (q) => q.eq("view", view.name).eq("key", k))
        .take(REFOLD_MAX_EVENTS + 1);
      if (docs.length > REFOLD_MAX_EVENTS) throw new RefoldOverflow();
      let added = false;
      for (const doc of docs) {
        if (!byId.has(doc.event)) {
          byId.set(doc.event, doc.event);
          added = true;
        }
      }
      return added;
    };
    await fetch(key);
    const lists = MATCH_COLUMNS.get(view.name) ?? [];
    if (entry.row !== null) for (const columns of lists) await fetch(rowMatchKey(columns, entry.row));
    const events = new Map<string, StoredEvent>();
    // Removals by match depend on the values the row passes through: widen
    // the event set until a replay brings no new match key.
    for (;;) {
      const missing = [...byId.values()].filter((id) => !events.has(id));
      for (const event of await Promise.all(missing.map((id) => this.storedEvent(id)))) {
        if (event !== null) events.set(event._id, event);
      }
      const result = this.replay(view, key, foldOrder([...events.values()]));
      let added = false;
      for (const k of result.matchKeys) if (await fetch(k)) added = true;
      if (added) continue;
      let row = result.row;
      if (row !== null) {
        // Counts come from the counted rows, not from this row's events.
        row = { ...row };
        for (const column of Object.keys(view.def.counts ?? {})) row[column] = entry.row?.[column] ?? 0;
      }
      await this.change(entry, row, result.origin);
      return;
    }
  }

  /** Re-folds every row a late event addressed (see {@link fold}). */
  async refold(): Promise<void> {
    await this.writeEventRows();
    // Rows re-fold concurrently (their reads overlap); count changes on a
    // shared counting row are applied without an await in between.
    await Promise.all(
      [...this.marked.values()].map(async (entry) => {
        try {
          await this.refoldRow(entry);
        } catch (error) {
          if (!(error instanceof RefoldOverflow)) throw error;
          this.overflow.add(entry.view.name);
        }
      }),
    );
    this.marked.clear();
  }

  /** Writes every changed row once, and the remaining `event_rows`. */
  async flush(): Promise<void> {
    const writes: Array<Promise<unknown>> = [];
    for (const entry of this.rows.values()) {
      if (!entry.dirty) continue;
      const { view, key } = entry;
      if (entry.row === null) {
        if (entry.id !== null) writes.push(this.ctx.db.delete(entry.id));
        continue;
      }
      const row = ordered(view, entry.row);
      const time = row[view.def.time];
      const doc = {
        view: view.name,
        key,
        origin: entry.origin ?? "",
        row,
        time: typeof time === "number" ? time : null,
        ...slotValues(view.name, row),
      };
      writes.push(entry.id === null ? this.ctx.db.insert("view_rows", doc) : this.ctx.db.replace(entry.id, doc));
    }
    await Promise.all(writes);
    await this.writeEventRows();
  }
}
