// On a real Convex backend `db.replace` and `db.patch` each read one index
// range (the document by id) that convex-test does not count. This rewrite of
// convex-test's source counts it, so the transaction limit of 4,096 ranges
// bites in tests and the double exactly where a deployment would fail.
// Used by double/expose-hook.mjs and vitest.config.ts.

const WRITE = /(case "1\.0\/(?:shallowMerge|replace)": \{\s*const \{ table, id, value \} = args;\s*)(getAndTrack\(table, id\);)/g;

/** `source` (convex-test's dist/index.js) with one index range counted per replace/patch. */
export function countWriteRanges(source) {
  let found = 0;
  const out = source.replace(WRITE, (_, head, read) => {
    found += 1;
    return `${head}tracker?.trackIndexRange(); ${read}`;
  });
  if (found !== 2) {
    throw new Error(`convex-test changed: expected its replace and patch syscalls, found ${found}`);
  }
  return out;
}

/** Whether a module id is convex-test's bundle. */
export function isConvexTest(id) {
  return /\/node_modules\/convex-test\/dist\/index\.js(\?.*)?$/.test(id);
}
