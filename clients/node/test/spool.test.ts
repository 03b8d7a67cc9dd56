import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { AtlasdClient, DaemonUnreachable, InvalidValue, Unavailable, type AtlasEvent } from "atlasd-client";

import { Daemon, eventually, python } from "./support/daemon.js";

function spoolFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => name !== "rejected").sort();
  } catch {
    return [];
  }
}

async function allEvents(client: AtlasdClient): Promise<AtlasEvent[]> {
  const events: AtlasEvent[] = [];
  let fromSeq = 0;
  for (;;) {
    const page = await client.read({ fromSeq, limit: 1000 });
    events.push(...page.events);
    if (page.events.length === 0) return events;
    fromSeq = page.lastSeq;
  }
}

describe("appends while no daemon answers", () => {
  let daemon: Daemon;
  let client: AtlasdClient;

  before(async () => {
    daemon = new Daemon(); // not started
    client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
  });

  after(async () => {
    client.close();
    await daemon.remove();
  });

  test("connect still gives a client, not connected, when no daemon answers", () => {
    assert.equal(client.connected, false);
  });

  test("an append is spooled as one NDJSON file in the Python client's format, mode 0640, no temp left", async () => {
    const result = await client.append({ stream: "s:1", type: "Seen", data: { n: 1 }, meta: { tool: "t" } });
    assert.equal(result.spooled, true);
    assert.equal(result.seq, null);
    if (!result.spooled) return;
    const name = result.spoolFile.slice(result.spoolFile.lastIndexOf("/") + 1);
    assert.match(name, new RegExp(`^\\d{20}-${process.pid}-[0-9a-f]{8}\\.ndjson$`));
    assert.equal(statSync(result.spoolFile).mode & 0o777, 0o640);
    assert.deepEqual(spoolFiles(join(daemon.dataDir, "spool")).filter((n) => n.startsWith(".")), []);
    const lines = readFileSync(result.spoolFile, "utf8").split("\n");
    assert.equal(lines.length, 2);
    assert.equal(lines[1], "");
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(line), ["stream", "type", "data", "event_id", "meta", "occurred_at"]);
    assert.equal(line["event_id"], result.eventId);
    // The Python side reads the file as the daemon will.
    const parsed = python(
      "import json, sys, pathlib; from atlasd.daemon.spool import parse_spool_file\n" +
        "events = parse_spool_file(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else input()))\n" +
        "print(json.dumps([[e.stream, e.type, e.data, e.event_id, e.meta, e.occurred_at] for e in events]))",
      result.spoolFile,
    ) as unknown[][];
    assert.deepEqual(parsed, [["s:1", "Seen", { n: 1 }, result.eventId, { tool: "t" }, line["occurred_at"]]]);
  });

  test("appendBatch spools all its events in one file", async () => {
    const results = await client.appendBatch([
      { stream: "s:2", type: "A", data: {} },
      { stream: "s:2", type: "B", data: {} },
    ]);
    assert.ok(results.every((r) => r.spooled));
    const files = new Set(results.map((r) => (r.spooled ? r.spoolFile : "")));
    assert.equal(files.size, 1);
    assert.equal(readFileSync([...files][0]!, "utf8").trim().split("\n").length, 2);
  });

  test("an append with expectedVersion is never spooled", async () => {
    const before = spoolFiles(join(daemon.dataDir, "spool"));
    await assert.rejects(
      client.append({ stream: "s:3", type: "T", data: {}, expectedVersion: 0 }),
      DaemonUnreachable,
    );
    assert.deepEqual(spoolFiles(join(daemon.dataDir, "spool")), before);
  });

  test("a value the daemon would refuse is refused before spooling, naming its path, and nothing is written", async () => {
    const before = spoolFiles(join(daemon.dataDir, "spool"));
    await assert.rejects(
      client.append({ stream: "s:4", type: "T", data: { a: [1, { big: 2 ** 60 }] } }),
      (error: unknown) => error instanceof InvalidValue && error.message === "data.a[1].big: integer outside -2**53..2**53",
    );
    await assert.rejects(
      client.appendBatch([
        { stream: "s:4", type: "T", data: {} },
        { stream: "s:4", type: "BuildStarted", data: { prd_id: "p" } },
      ]),
      (error: unknown) => error instanceof InvalidValue && error.message === "events[1].data.build_id: required",
    );
    assert.deepEqual(spoolFiles(join(daemon.dataDir, "spool")), before);
  });

  test("with spool: false an append rejects with DaemonUnreachable", async () => {
    const strict = new AtlasdClient({ socket: daemon.socket, dataDir: daemon.dataDir, spool: false });
    await assert.rejects(strict.append({ stream: "s:5", type: "T", data: {} }), DaemonUnreachable);
    strict.close();
  });
});

describe("spool files ingested by the daemon", () => {
  let root: string;

  before(() => {
    root = mkdtempSync("/tmp/atn-sp-");
  });

  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test("a Node-spooled file and a Python-spooled file side by side are both ingested, once, with their ids and times", async () => {
    const daemon = new Daemon(root);
    const offline = new AtlasdClient({ socket: daemon.socket, dataDir: daemon.dataDir });
    const fromNode = await offline.appendBatch([
      { stream: "mix:node", type: "FromNode", data: { i: 1 }, occurredAt: 1_600_000_000_000 },
      { stream: "mix:node", type: "FromNode", data: { i: 2 } },
    ]);
    offline.close();
    const spoolDir = join(daemon.dataDir, "spool");
    const pythonIds = python(
      "import json, sys; from pathlib import Path\n" +
        "from atlasd.client.spool import write_spool_file\n" +
        "from atlasd.events import NewEvent, new_event_id\n" +
        "events = [NewEvent(stream='mix:py', type='FromPython', data={'i': i}, event_id=new_event_id(), occurred_at=1_500_000_000_000 + i) for i in (1, 2)]\n" +
        "write_spool_file(Path(input()), events)\n" +
        "print(json.dumps([e.event_id for e in events]))",
      spoolDir,
    ) as string[];
    assert.equal(spoolFiles(spoolDir).filter((n) => n.endsWith(".ndjson")).length, 2);

    await daemon.start();
    const client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    try {
      const events = await eventually(async () => {
        const all = await allEvents(client);
        return all.length >= 4 ? all : null;
      });
      assert.equal(events.length, 4);
      const byId = new Map(events.map((e) => [e.event_id, e]));
      for (const id of [...fromNode.map((r) => r.eventId), ...pythonIds]) assert.ok(byId.has(id), id);
      assert.equal(byId.get(fromNode[0]!.eventId)!.occurred_at, 1_600_000_000_000);
      assert.equal(byId.get(pythonIds[1]!)!.occurred_at, 1_500_000_000_002);
      assert.deepEqual(spoolFiles(spoolDir).filter((n) => n.endsWith(".ndjson")), []);
      assert.deepEqual(readdirSync(join(spoolDir, "rejected")), []);
    } finally {
      client.close();
      await daemon.stop();
    }
  });
});

describe("a daemon that refuses appends with unavailable", () => {
  let daemon: Daemon;

  before(async () => {
    const root = mkdtempSync("/tmp/atn-cap-");
    writeFileSync(join(root, "atlasd.toml"), "max_db_bytes = 600000\n");
    daemon = await new Daemon(root, { ATLASD_CONFIG: join(root, "atlasd.toml") }).start();
  });

  after(async () => {
    await daemon.remove();
  });

  test("an append refused as unavailable (size cap reached) is spooled; with expectedVersion it rejects", async () => {
    const strict = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir, spool: false });
    const filler = "f".repeat(50_000);
    let refusal: unknown;
    for (let i = 0; i < 100 && refusal === undefined; i++) {
      await strict.append({ stream: "cap:fill", type: "Fill", data: { filler } }).catch((error) => (refusal = error));
    }
    strict.close();
    assert.ok(refusal instanceof Unavailable, String(refusal));

    const client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    // as large as the one refused: it needs pages the cap does not allow
    const result = await client.append({ stream: "cap:after", type: "Kept", data: { filler } });
    assert.equal(result.spooled, true);
    assert.ok(result.spooled && readFileSync(result.spoolFile, "utf8").includes(result.eventId));
    await assert.rejects(client.append({ stream: "cap:after", type: "Kept", data: { filler }, expectedVersion: 0 }), Unavailable);
    client.close();
  });
});
