/**
 * The pack definitions the deployment runs (docs/views.md, "The pack
 * format"): the bundled built-in packs, indexed by view and by event type.
 *
 * `packs_generated.ts` is a copy of `atlasd/packs/builtin/*.json` made by
 * `npm run packs`; this module gives it types and the lookups the engine,
 * the layout and the rebuild need.
 */
import { BUNDLED_PACKS } from "./packs_generated";

export type ColumnType = "string" | "integer" | "number" | "boolean" | "string_list" | "json" | "time";
export type FieldType = "id" | "string" | "integer" | "number" | "boolean" | "object" | "array" | "string_list" | "any";

/** `{FIELD: [VALUE, ...]}`: holds when every named data field equals one of its values. */
export type When = Readonly<Record<string, readonly unknown[]>>;
/** `{COLUMN: SOURCE}`: a data field name, `$time` or `$event_id`. */
export type Sources = Readonly<Record<string, string>>;

export type CountDef = { readonly view: string; readonly by: readonly string[]; readonly where?: When };

export type ViewDef = {
  readonly key: readonly string[];
  readonly columns: Readonly<Record<string, ColumnType>>;
  readonly initial?: Readonly<Record<string, unknown>>;
  readonly counts?: Readonly<Record<string, CountDef>>;
  readonly time: string;
  readonly indexes?: readonly (readonly string[])[];
};

export type Upsert = {
  readonly op: "upsert";
  readonly view: string;
  readonly key: Sources;
  readonly when?: When;
  readonly set?: Sources;
  readonly set_once?: Sources;
  readonly increment?: readonly string[];
  readonly add?: Sources;
};
export type Remove = { readonly op: "remove"; readonly view: string; readonly key: Sources; readonly when?: When };
export type RemoveMatching = { readonly op: "remove_matching"; readonly view: string; readonly match: Sources; readonly when?: When };
export type Action = Upsert | Remove | RemoveMatching;

export type FieldDef = { readonly type: FieldType; readonly required: boolean; readonly enum?: readonly unknown[] };

export type EventDef = {
  readonly stream: string;
  readonly fields: Readonly<Record<string, FieldDef>>;
  readonly needs: readonly string[];
  readonly apply: readonly Action[];
};

export type PackDef = {
  readonly pack: string;
  readonly description?: string;
  readonly views: Readonly<Record<string, ViewDef>>;
  readonly events: Readonly<Record<string, EventDef>>;
};

export type BundledPack = { readonly file: string; readonly version: string; readonly definition: PackDef };

/**
 * The engine's own revision, mixed into every view's hash: bump it when a
 * change to the interpreter changes the rows it gives, so deployed views are
 * rebuilt (docs/convex.md, "Rebuilding a view").
 */
export const ENGINE_REVISION = "1";

/** A count kept on another view that rows of this view take part in. */
export type CountRef = { readonly view: string; readonly column: string; readonly def: CountDef };

export type ViewInfo = {
  readonly name: string;
  readonly pack: string;
  readonly def: ViewDef;
  /** Definition hash: the pack's content version and the engine revision. */
  readonly hash: string;
  readonly columns: readonly string[];
  /** Counts on other views (or this one) that count rows of this view. */
  readonly countedBy: readonly CountRef[];
  /** Whether any action can remove rows of this view. */
  readonly removable: boolean;
  /** Whether the key is the event's own id (`$event_id`): such rows are written by one event only. */
  readonly keyedByEvent: boolean;
};

function buildViews(packs: readonly BundledPack[]): Map<string, ViewInfo> {
  const views = new Map<string, ViewInfo>();
  const countedBy = new Map<string, CountRef[]>();
  const removable = new Set<string>();
  const keyedByEvent = new Map<string, boolean>();
  for (const { definition } of packs) {
    for (const [name, def] of Object.entries(definition.views)) {
      for (const [column, count] of Object.entries(def.counts ?? {})) {
        const list = countedBy.get(count.view) ?? [];
        list.push({ view: name, column, def: count });
        countedBy.set(count.view, list);
      }
    }
    for (const event of Object.values(definition.events)) {
      for (const action of event.apply) {
        if (action.op !== "upsert") removable.add(action.view);
        if (action.op === "upsert") {
          const own = Object.values(action.key).every((source) => source === "$event_id");
          keyedByEvent.set(action.view, (keyedByEvent.get(action.view) ?? true) && own);
        }
      }
    }
  }
  for (const { definition, version } of packs) {
    for (const [name, def] of Object.entries(definition.views)) {
      views.set(name, {
        name,
        pack: definition.pack,
        def,
        hash: `${version}-${ENGINE_REVISION}`,
        columns: Object.keys(def.columns),
        countedBy: countedBy.get(name) ?? [],
        removable: removable.has(name),
        keyedByEvent: (keyedByEvent.get(name) ?? false) && !removable.has(name),
      });
    }
  }
  return views;
}

function buildEvents(packs: readonly BundledPack[]): Map<string, EventDef> {
  const events = new Map<string, EventDef>();
  for (const { definition } of packs) for (const [type, def] of Object.entries(definition.events)) events.set(type, def);
  return events;
}

/** Every view of every bundled pack, by name. */
export const VIEWS: ReadonlyMap<string, ViewInfo> = buildViews(BUNDLED_PACKS);
/** Every event type a bundled pack defines. */
export const EVENTS: ReadonlyMap<string, EventDef> = buildEvents(BUNDLED_PACKS);
/** View names, in pack order. */
export const VIEW_NAMES: readonly string[] = [...VIEWS.keys()];

/** The view named `name`; throws for an unknown view. */
export function viewInfo(name: string): ViewInfo {
  const info = VIEWS.get(name);
  if (info === undefined) throw new Error(`unknown view ${JSON.stringify(name)}; one of ${VIEW_NAMES.join(", ")}`);
  return info;
}

/** The row's key as stored in `view_rows.key`: the JSON array of its key columns' values. */
export function rowKey(view: ViewInfo, row: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(view.def.key.map((column) => row[column] ?? null));
}
