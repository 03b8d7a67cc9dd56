// Query paging (`after` -> `next`) as the protocol states it, against a scripted peer
// on a real Unix socket: the daemon in this checkout answers every query in one page.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { AtlasdClient } from "atlasd-client";
import { Atlas } from "atlasd-client/atlas";

const ROWS = Array.from({ length: 7 }, (_, i) => ({ pattern_id: `p${i}`, language: "go", tags: [] }));
const PAGE = 3;

describe("a daemon that answers queries in pages", () => {
  let root: string;
  let server: Server;
  const seen: Record<string, unknown>[] = [];

  before(async () => {
    root = mkdtempSync("/tmp/atn-page-");
    server = createServer((conn) => {
      conn.setEncoding("utf8");
      let partial = "";
      conn.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          const request = JSON.parse(line) as Record<string, unknown>;
          seen.push(request);
          const start = typeof request["after"] === "string" ? Number(request["after"].slice(1)) : 0;
          const rows = ROWS.slice(start, start + PAGE);
          const next = start + PAGE < ROWS.length ? `c${start + PAGE}` : null;
          conn.write(JSON.stringify({ id: request["id"], ok: true, result: { rows, next } }) + "\n");
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(join(root, "a.sock"), resolve));
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(root, { recursive: true, force: true });
  });

  test("query returns one page and its next cursor; queryAll follows next to the end, keeping the filter", async () => {
    const client = await AtlasdClient.connect({ socket: join(root, "a.sock"), dataDir: root });
    const first = await client.query("patterns", { filter: { language: "go" } });
    assert.equal(first.rows.length, PAGE);
    assert.equal(first.next, "c3");
    seen.length = 0;
    const all = await client.queryAll("patterns", { filter: { language: "go" } });
    assert.deepEqual(all, ROWS);
    assert.deepEqual(seen.map((r) => r["after"]), [undefined, "c3", "c6"]);
    assert.ok(seen.every((r) => JSON.stringify(r["filter"]) === '{"language":"go"}'));
    client.close();
  });

  test("queryConvexPatterns answers every row across the pages", async () => {
    const atlas = new Atlas({ socket: join(root, "a.sock"), dataDir: root });
    assert.deepEqual(await atlas.queryConvexPatterns("go"), ROWS);
    atlas.close();
  });
});
