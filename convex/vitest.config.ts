import { defineConfig, type Plugin } from "vitest/config";
// @ts-expect-error: a plain .mjs helper shared with the double, without types
import { countWriteRanges, isConvexTest } from "./double/write-ranges.mjs";

/**
 * Exposes convex-test's in-memory database class (not exported) as
 * `__DatabaseFake`, as double/expose-hook.mjs does for the double, so a
 * suite can install test/fastread.ts.
 */
function exposeDatabaseFake(): Plugin {
  return {
    name: "expose-convex-test-database",
    transform(code, id) {
      if (!(isConvexTest as (id: string) => boolean)(id)) return null;
      return { code: `${code}\nexport { DatabaseFake as __DatabaseFake };\n`, map: null };
    },
  };
}

export default defineConfig({
  plugins: [
    {
      // Count the index range a real backend reads for each replace/patch.
      name: "atlasd-write-ranges",
      transform(code: string, id: string) {
        return isConvexTest(id) ? { code: (countWriteRanges as (s: string) => string)(code), map: null } : null;
      },
    },
    exposeDatabaseFake(),
  ],
  test: {
    // Convex functions run in a V8 isolate without Node's APIs; edge-runtime
    // is the closest local stand-in and catches accidental Node imports.
    environment: "edge-runtime",
    // Threads, not forks: a stopped vitest leaves no orphaned worker.
    pool: "threads",
    include: ["test/**/*.test.ts"],
    server: { deps: { inline: ["convex-test"] } },
    testTimeout: 60_000,
  },
});
