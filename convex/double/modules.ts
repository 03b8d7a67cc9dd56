/**
 * The functions' modules map for convex-test outside vitest: what
 * `import.meta.glob("../functions/**\/*.*s")` gives under Vite, built from
 * the file system so a new module needs no edit here.
 */
import { readdirSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const FUNCTIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "functions");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return /\.(ts|js)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** `{"../functions/ingest.ts": () => import(...)}` for every module, `_generated` included. */
export function functionModules(): Record<string, () => Promise<unknown>> {
  const base = join(FUNCTIONS_DIR, "..", "double");
  return Object.fromEntries(
    files(FUNCTIONS_DIR).map((path) => {
      const key = relative(base, path).split(sep).join("/");
      const url = pathToFileURL(path).href;
      return [key, () => import(url)];
    }),
  );
}
