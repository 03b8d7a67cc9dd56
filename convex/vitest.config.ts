import { defineConfig } from "vitest/config";

export default defineConfig({
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
