import { defineConfig, type Plugin } from "vitest/config";

/**
 * Exposes convex-test's in-memory database class (not exported) as
 * `__DatabaseFake`, as double/expose-hook.mjs does for the double, so a
 * suite can install test/fastread.ts.
 */
function exposeDatabaseFake(): Plugin {
  return {
    name: "expose-convex-test-database",
    transform(code, id) {
      if (!id.includes("/node_modules/convex-test/dist/index.js")) return null;
      return { code: `${code}\nexport { DatabaseFake as __DatabaseFake };\n`, map: null };
    },
  };
}

export default defineConfig({
  plugins: [exposeDatabaseFake()],
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
