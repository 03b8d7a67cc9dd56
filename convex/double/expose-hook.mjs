// Module hook for the double: makes convex-test's in-memory database class
// reachable (it is not exported) so double/fastpath.ts can index it.
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (url.endsWith("/node_modules/convex-test/dist/index.js") && result.source != null) {
    const source = `${result.source}\nexport { DatabaseFake as __DatabaseFake };\n`;
    return { ...result, source, shortCircuit: true };
  }
  return result;
}
