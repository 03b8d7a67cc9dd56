/**
 * A read cache for convex-test's in-memory database, for suites that page
 * through large tables.
 *
 * Stock convex-test answers each query by collecting and sorting every
 * document of the table, so paging 20,000 rows by 100 costs 200 full sorts.
 * This keeps the sorted candidates of each query source (index, range,
 * order, filters) and reuses them while nothing is written: the cache is
 * emptied by every commit that writes, and bypassed inside a transaction
 * that has written. convex-test's own `paginate` still walks the cached list, so
 * cursors, page sizes and limits behave as before. `verify` also computes
 * every answer the stock way and throws on a difference.
 */
import * as convexTest from "convex-test";

type Resolved = { sortedDocs: Array<{ _id: string }> };
interface FakeDb {
  _writes: Array<Record<string, unknown>>;
  commit(...args: unknown[]): unknown;
  _resolveQuerySource(query: unknown): Resolved;
}
type FakeDbClass = { prototype: FakeDb };

const caches = new WeakMap<FakeDb, Map<string, Resolved>>();
let installed: { verify: boolean } | null = null;

function cacheKey(query: unknown): string | null {
  try {
    return JSON.stringify(query);
  } catch {
    return null; // e.g. a bigint in a range: answer it the stock way
  }
}

/** Installs the cache on every convex-test database of this worker (idempotent). */
export function installReadCache(options: { verify?: boolean } = {}): void {
  if (installed !== null) {
    installed.verify = options.verify ?? false;
    return;
  }
  installed = { verify: options.verify ?? false };
  const state = installed;
  const Fake = (convexTest as unknown as { __DatabaseFake?: FakeDbClass }).__DatabaseFake;
  if (Fake === undefined) throw new Error("convex-test's DatabaseFake is not exposed (see vitest.config.ts)");
  const proto = Fake.prototype;
  const resolve = proto._resolveQuerySource;
  const commit = proto.commit;
  proto.commit = function (this: FakeDb, ...args: unknown[]) {
    // Read-only transactions commit an empty layer: keep the cache then.
    const layer = this._writes[this._writes.length - 1];
    if (layer === undefined || Object.keys(layer).length > 0) caches.delete(this);
    return commit.apply(this, args);
  };
  proto._resolveQuerySource = function (this: FakeDb, query: unknown): Resolved {
    const key = cacheKey(query);
    const written = this._writes.some((layer) => Object.keys(layer).length > 0);
    if (key === null || written) return resolve.call(this, query);
    let cache = caches.get(this);
    if (cache === undefined) caches.set(this, (cache = new Map()));
    let hit = cache.get(key);
    if (hit === undefined) cache.set(key, (hit = resolve.call(this, query)));
    if (state.verify) {
      const fresh = resolve.call(this, query).sortedDocs.map((d) => d._id);
      const cached = hit.sortedDocs.map((d) => d._id);
      if (JSON.stringify(fresh) !== JSON.stringify(cached)) throw new Error(`read cache differs for ${key}`);
    }
    return hit;
  };
}
