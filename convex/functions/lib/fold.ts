/**
 * The pack interpreter's pure part (docs/views.md, "Projecting an event"):
 * reading data by type, `needs` and `when`, new rows, and what one action
 * does to one row. No database here: `engine.ts` loads and stores the rows.
 */
import type { Action, ColumnType, EventDef, FieldType, Sources, ViewInfo, When } from "./packs";

/** The part of a stored event the views read. */
export type FoldEvent = {
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  recorded_at: number;
  occurred_at?: number;
  origin: string;
  seq: number;
};

export type Row = Record<string, unknown>;

/** The event's `t`: when the thing happened, else when it was recorded. */
export function eventTime(event: FoldEvent): number {
  return event.occurred_at ?? event.recorded_at;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

/** Whether `value` is of field type `type` (the append-time schema's types). */
export function isFieldType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case "id":
      return typeof value === "string" && value.length > 0;
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "string_list":
      return isStringList(value);
    case "any":
      return value !== undefined && value !== null;
  }
}

/** `value` read as a column of `type`: absent or mistyped is `null` (`[]` for a list). */
export function readAs(value: unknown, type: ColumnType): unknown {
  switch (type) {
    case "string":
      return typeof value === "string" ? value : null;
    case "integer":
    case "time":
      return typeof value === "number" && Number.isInteger(value) ? value : null;
    case "number":
      return typeof value === "number" ? value : null;
    case "boolean":
      return typeof value === "boolean" ? value : null;
    case "string_list":
      return isStringList(value) ? [...value] : [];
    case "json":
      return value === undefined || value === null ? null : structuredClone(value);
  }
}

/** JSON equality: same type and value (`true` is not `1`), objects and arrays by content. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** The raw value of a source: a data field, `$time` or `$event_id`. */
export function sourceValue(event: FoldEvent, source: string): unknown {
  if (source === "$time") return eventTime(event);
  if (source === "$event_id") return event.event_id;
  return event.data[source];
}

/** Whether every field of `needs` is present and of its field type (else the event is unprojected). */
export function projectable(def: EventDef, event: FoldEvent): boolean {
  return def.needs.every((field) => {
    const type = def.fields[field]?.type;
    return type !== undefined && isFieldType(event.data[field], type);
  });
}

/** Whether `when` holds for the event (absent `when` always holds). */
export function holds(when: When | undefined, event: FoldEvent): boolean {
  if (when === undefined) return true;
  return Object.entries(when).every(([field, values]) => {
    const value = event.data[field];
    return value !== undefined && values.some((v) => jsonEqual(v, value));
  });
}

/** The stored key of the row an upsert or remove addresses: JSON of its key values in the view's key order. */
export function actionKey(view: ViewInfo, sources: Sources, event: FoldEvent): string {
  return JSON.stringify(view.def.key.map((column) => sourceValue(event, sources[column] as string)));
}

/** The key columns of a stored key. */
export function keyColumns(view: ViewInfo, key: string): Row {
  const values = JSON.parse(key) as unknown[];
  return Object.fromEntries(view.def.key.map((column, i) => [column, values[i]]));
}

/** A new row: key columns set, lists `[]`, counts 0, `initial` values, everything else `null`. */
export function newRow(view: ViewInfo, key: string): Row {
  const keys = keyColumns(view, key);
  const row: Row = {};
  for (const [column, type] of Object.entries(view.def.columns)) {
    if (column in keys) row[column] = keys[column];
    else if (view.def.counts?.[column] !== undefined) row[column] = 0;
    else if (view.def.initial !== undefined && column in view.def.initial) row[column] = structuredClone(view.def.initial[column]);
    else row[column] = type === "string_list" ? [] : null;
  }
  return row;
}

/** The values `match` asks for, as stored under the match's `event_rows` key. */
export function matchKey(match: Sources, view: ViewInfo, event: FoldEvent): string {
  const values = Object.fromEntries(
    Object.entries(match)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([column, source]) => [column, readAs(sourceValue(event, source), view.def.columns[column] as ColumnType)]),
  );
  return `match:${JSON.stringify(values)}`;
}

/** The match key a row of `view` would be removed under by a `remove_matching` on `columns`. */
export function rowMatchKey(columns: readonly string[], row: Row): string {
  const values = Object.fromEntries([...columns].sort().map((column) => [column, row[column] ?? null]));
  return `match:${JSON.stringify(values)}`;
}

/** Whether `row` has every column `match` asks for. */
export function rowMatches(match: Sources, view: ViewInfo, event: FoldEvent, row: Row): boolean {
  return Object.entries(match).every(([column, source]) =>
    jsonEqual(row[column] ?? null, readAs(sourceValue(event, source), view.def.columns[column] as ColumnType)),
  );
}

/**
 * An upsert's changes to `row` (found or new), in the format's order:
 * set, set_once, increment, add. Returns the changed row (a copy).
 */
export function applyUpsert(view: ViewInfo, action: Extract<Action, { op: "upsert" }>, event: FoldEvent, row: Row): Row {
  const out: Row = { ...row };
  const type = (column: string): ColumnType => view.def.columns[column] as ColumnType;
  for (const [column, source] of Object.entries(action.set ?? {})) out[column] = readAs(sourceValue(event, source), type(column));
  for (const [column, source] of Object.entries(action.set_once ?? {})) {
    const value = readAs(sourceValue(event, source), type(column));
    if ((out[column] ?? null) === null && value !== null) out[column] = value;
  }
  for (const column of action.increment ?? []) out[column] = (typeof out[column] === "number" ? (out[column] as number) : 0) + 1;
  for (const [column, source] of Object.entries(action.add ?? {})) {
    const raw = sourceValue(event, source);
    const items = typeof raw === "string" ? [raw] : isStringList(raw) ? raw : [];
    const list = Array.isArray(out[column]) ? [...(out[column] as string[])] : [];
    for (const item of items) if (!list.includes(item)) list.push(item);
    out[column] = list;
  }
  return out;
}

/** Whether an upsert only makes sure the row exists (no set, set_once, increment or add). */
export function existenceOnly(action: Extract<Action, { op: "upsert" }>): boolean {
  return (
    Object.keys(action.set ?? {}).length === 0 &&
    Object.keys(action.set_once ?? {}).length === 0 &&
    (action.increment ?? []).length === 0 &&
    Object.keys(action.add ?? {}).length === 0
  );
}

/** The row in the view's column order, exactly its columns. */
export function ordered(view: ViewInfo, row: Row): Row {
  return Object.fromEntries(view.columns.map((column) => [column, row[column] ?? null]));
}
