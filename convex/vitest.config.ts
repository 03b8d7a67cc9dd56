import { defineConfig } from "vitest/config";
// @ts-expect-error: a plain .mjs helper shared with the double, without types
import { countWriteRanges, isConvexTest } from "./double/write-ranges.mjs";

export default defineConfig({
  plugins: [
    {
      // Count the index range a real backend reads for each replace/patch.
      name: "atlasd-write-ranges",
      transform(code: string, id: string) {
        return isConvexTest(id) ? { code: (countWriteRanges as (s: string) => string)(code), map: null } : null;
      },
    },
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
