/**
 * A fast path for convex-test's in-memory database, for the double only.
 *
 * Stock convex-test answers every query by walking the ids of all documents
 * of all tables, so ingest slows down quadratically as tables grow. This
 * keeps, per database, the committed ids of each table and, for every index
 * whose first field holds a string, the committed ids per value, and per
 * pair of values when its second field holds a string too (view rows are
 * found by `view` and `key`). A query on an index whose range starts with
 * `.eq(firstField, "string")` (and `.eq(secondField, "string")`) then walks
 * only those ids plus every id written in the open transaction; convex-test's
 * own code still applies the whole range, the filters, the order and the
 * limit to them, so answers are unchanged as long as the candidates include
 * every match (committed docs are only changed by `commit`, which is wrapped
 * to keep the maps in step).
 *
 * With `ATLASD_DOUBLE_VERIFY=1` every fast query is also answered the stock
 * way and a difference throws (used by the tests of the double).
 */

type Doc = Record<string, unknown> & { _id: string };
type Index = { indexDescriptor: string; fields: string[] };
type RangeFilter = { type: string; fieldPath: string; value: unknown };
type Query = { source: { type: string; indexName?: string; range?: RangeFilter[] } };
type Resolved = { sortedDocs: Doc[] };

interface FakeDb {
  _documents: Record<string, Doc>;
  _writes: Array<Record<string, Doc | null>>;
  _schema: { tables: Map<string, { indexes: Index[] }> } | null;
  get(table: string, id: string): Doc | null;
  commit(...args: unknown[]): unknown;
  _iterateDocs(table: string, callback: (doc: Doc) => void): void;
  _resolveQuerySource(query: Query): Resolved;
}

type State = {
  byTable: Map<string, Set<string>>;
  /** "table.index" -> first-field string value -> ids. */
  byIndex: Map<string, Map<string, Set<string>>>;
  /** "table.index" -> JSON of the first two fields' string values -> ids. */
  byPair: Map<string, Map<string, Set<string>>>;
  only: Set<string> | null;
};

const states = new WeakMap<FakeDb, State>();

function tableOf(id: string): string {
  return id.replace(/^[0-9]+/, "");
}

function indexesOf(db: FakeDb, table: string): Index[] {
  return (db._schema?.tables.get(table)?.indexes ?? []).filter((ix) => !ix.fields[0]?.includes("."));
}

function track(db: FakeDb, state: State, id: string, old: Doc | undefined, now: Doc | undefined): void {
  const table = tableOf(id);
  let ids = state.byTable.get(table);
  if (ids === undefined) state.byTable.set(table, (ids = new Set()));
  if (now === undefined) ids.delete(id);
  else ids.add(id);
  for (const index of indexesOf(db, table)) {
    const field = index.fields[0] as string;
    const name = `${table}.${index.indexDescriptor}`;
    let byValue = state.byIndex.get(name);
    if (byValue === undefined) state.byIndex.set(name, (byValue = new Map()));
    const before = old?.[field];
    if (typeof before === "string") byValue.get(before)?.delete(id);
    const after = now?.[field];
    if (typeof after === "string") {
      let set = byValue.get(after);
      if (set === undefined) byValue.set(after, (set = new Set()));
      set.add(id);
    }
    const second = index.fields[1];
    if (second === undefined || second.includes(".")) continue;
    let byPair = state.byPair.get(name);
    if (byPair === undefined) state.byPair.set(name, (byPair = new Map()));
    const pairBefore = pairOf(old, field, second);
    if (pairBefore !== null) byPair.get(pairBefore)?.delete(id);
    const pairAfter = pairOf(now, field, second);
    if (pairAfter !== null) {
      let set = byPair.get(pairAfter);
      if (set === undefined) byPair.set(pairAfter, (set = new Set()));
      set.add(id);
    }
  }
}

/** The pair bucket of a document on an index's first two fields, when both hold strings. */
function pairOf(doc: Doc | undefined, first: string, second: string): string | null {
  const a = doc?.[first];
  const b = doc?.[second];
  return typeof a === "string" && typeof b === "string" ? JSON.stringify([a, b]) : null;
}

function stateOf(db: FakeDb): State {
  let state = states.get(db);
  if (state === undefined) {
    state = { byTable: new Map(), byIndex: new Map(), byPair: new Map(), only: null };
    states.set(db, state);
    for (const [id, doc] of Object.entries(db._documents)) track(db, state, id, undefined, doc);
  }
  return state;
}

/** Ids that include every match of `query`, or null when there is no fast path for it. */
function candidates(db: FakeDb, state: State, query: Query): Set<string> | null {
  const { source } = query;
  if (source.type !== "IndexRange" || source.indexName === undefined) return null;
  const [table, indexName] = source.indexName.split(".") as [string, string];
  const index = indexesOf(db, table).find((ix) => ix.indexDescriptor === indexName);
  const first = source.range?.[0];
  if (index === undefined || first === undefined) return null;
  if (first.type !== "Eq" || first.fieldPath !== index.fields[0] || typeof first.value !== "string") return null;
  const next = source.range?.[1];
  if (next !== undefined && next.type === "Eq" && next.fieldPath === index.fields[1] && typeof next.value === "string") {
    return new Set(state.byPair.get(source.indexName)?.get(JSON.stringify([first.value, next.value])) ?? []);
  }
  return new Set(state.byIndex.get(source.indexName)?.get(first.value) ?? []);
}

/** Installs the fast path on convex-test's database class (idempotent). */
export function installFastPath(DatabaseFake: { prototype: FakeDb }, verify: boolean): void {
  const proto = DatabaseFake.prototype as FakeDb & { __atlasdFastPath?: true };
  if (proto.__atlasdFastPath) return;
  proto.__atlasdFastPath = true;
  const commit = proto.commit;
  const resolve = proto._resolveQuerySource;

  proto.commit = function (this: FakeDb, ...args: unknown[]) {
    const state = stateOf(this);
    // Only the outermost commit changes committed documents.
    const top = this._writes.length === 1 ? this._writes[0] : undefined;
    const before = top === undefined ? [] : Object.keys(top).map((id) => [id, this._documents[id]] as const);
    const result = commit.apply(this, args);
    for (const [id, old] of before) track(this, state, id, old, this._documents[id]);
    return result;
  };

  proto._iterateDocs = function (this: FakeDb, table: string, callback: (doc: Doc) => void) {
    const state = stateOf(this);
    const ids = new Set(state.only ?? state.byTable.get(table) ?? []);
    for (const layer of this._writes) {
      for (const id of Object.keys(layer)) if (tableOf(id) === table) ids.add(id);
    }
    for (const id of ids) {
      const doc = this.get(table, id);
      if (doc !== null) callback(doc);
    }
  };

  proto._resolveQuerySource = function (this: FakeDb, query: Query): Resolved {
    const state = stateOf(this);
    const only = candidates(this, state, query);
    if (only === null) return resolve.call(this, query);
    state.only = only;
    let fast: Resolved;
    try {
      fast = resolve.call(this, query);
    } finally {
      state.only = null;
    }
    if (verify) {
      const slow = resolve.call(this, query);
      const a = fast.sortedDocs.map((d) => d._id).join(",");
      const b = slow.sortedDocs.map((d) => d._id).join(",");
      if (a !== b) throw new Error(`double fast path differs on ${JSON.stringify(query.source)}: ${a} != ${b}`);
    }
    return fast;
  };
}
