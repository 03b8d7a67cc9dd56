// Module hook for the double: makes convex-test's in-memory database class
// reachable (it is not exported) so double/fastpath.ts can index it, and
// counts the index range each replace/patch reads on a real backend.
import { countWriteRanges, isConvexTest } from "./write-ranges.mjs";

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (isConvexTest(url) && result.source != null) {
    const source = `${countWriteRanges(String(result.source))}\nexport { DatabaseFake as __DatabaseFake };\n`;
    return { ...result, source, shortCircuit: true };
  }
  return result;
}
