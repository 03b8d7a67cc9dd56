import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";

import { AtlasdClient, InvalidValue, checkPackFields } from "atlasd-client";
import { Atlas } from "atlasd-client/atlas";

import { Daemon, REPO } from "./support/daemon.js";

const PACKAGE = resolve(REPO, "clients", "node");
const GEN = join(PACKAGE, "scripts", "gen-packs.mjs");

function gen(...args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [GEN, ...args], { encoding: "utf8" });
  return { status: result.status, stderr: result.stderr };
}

describe("the bundled pack schemas", () => {
  test("are what `npm run gen` makes from the Python package's pack files", () => {
    const result = gen("--check");
    assert.equal(result.status, 0, result.stderr);
  });

  test("the check fails on a bundled copy that differs from the pack files", () => {
    const dir = mkdtempSync("/tmp/atn-gen-");
    try {
      const stale = join(dir, "pack-schemas.ts");
      const current = readFileSync(join(PACKAGE, "src", "pack-schemas.ts"), "utf8");
      writeFileSync(stale, current.replace('"required": true', '"required": false'));
      const result = gen("--check", "--out", stale);
      assert.equal(result.status, 1);
      assert.match(result.stderr, /stale/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a pack type's data is checked with the daemon's messages", () => {
    const refusal = (type: string, data: Record<string, unknown>) => {
      try {
        checkPackFields(type, data);
        return "ok";
      } catch (error) {
        assert.ok(error instanceof InvalidValue);
        return error.message;
      }
    };
    assert.equal(refusal("TaskLogged", { build_id: "b" }), "data.task_id: required");
    assert.equal(refusal("BuildCompleted", { build_id: "b", status: "sideways" }), "data.status: expected one of completed, failed");
    assert.equal(refusal("AssetSaved", { asset_id: "a", name: "n", category: "c", tags: ["x", 1] }), "data.tags: expected string_list");
    assert.equal(refusal("ThreadSaved", { thread_id: "", resource_id: "r", title: "t" }), "data.thread_id: expected id");
    assert.equal(refusal("TraceRecorded", { trace_id: "t", span_id: "s", name: "n", start_ms: 1.5, end_ms: 2 }), "data.start_ms: expected integer");
    assert.equal(refusal("ThreadSaved", { thread_id: "t", resource_id: "r", title: "t", metadata: null, extra: 1 }), "ok");
    assert.equal(refusal("NoPackDefinesThis", {}), "ok");
  });
});

describe("the pack events through the facade", () => {
  let daemon: Daemon;
  let client: AtlasdClient;
  let atlas: Atlas;
  const warnings: string[] = [];

  before(async () => {
    daemon = await new Daemon().start();
    client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    atlas = new Atlas({ socket: daemon.socket, dataDir: daemon.dataDir, warn: (m) => warnings.push(m) });
  });

  after(async () => {
    atlas.close();
    client.close();
    await daemon.remove();
  });

  test("every pack method writes its event to the pack's stream and the views show it", async () => {
    await atlas.saveThread({ thread_id: "th1", resource_id: "r", title: "Hello" });
    await atlas.saveMessage({ message_id: "m1", thread_id: "th1", role: "user", content: "hi" });
    await atlas.saveMessage({ message_id: "m2", thread_id: "th1", role: "assistant", content: { text: "yo" } });
    await atlas.saveWorkflowRun({ run_id: "run1", workflow_name: "w", status: "running", snapshot: {} });
    await atlas.recordTrace({ trace_id: "tr1", span_id: "sp1", name: "root", start_ms: 1, end_ms: 2 });
    await atlas.recordEval({ eval_id: "e1", agent_name: "a", metric_name: "m", score: 0.5 });
    await atlas.saveWorkflow({ workflow_id: "wf1", name: "w", definition: { steps: [] } });
    await atlas.saveWorkflowExecution({ execution_id: "x1", workflow_id: "wf1", status: "done", state: {} });
    await atlas.saveAsset({ asset_id: "as1", name: "n", category: "c", tags: ["t"] });
    await atlas.assetDownloaded({ asset_id: "as1" });
    await atlas.assetDownloaded({ asset_id: "as1" });
    await atlas.saveAsset({ asset_id: "as2", name: "gone", category: "c", tags: [] });
    await atlas.deleteAsset({ asset_id: "as2" });
    await atlas.recordDeployment({ deployment_id: "d1", site_id: "s1", status: "building" });
    await atlas.setDeploymentStatus({ deployment_id: "d1", status: "ready" });
    await atlas.startAgentJob({ job_id: "j1", agent: "coder" });
    await atlas.finishAgentJob({ job_id: "j1", status: "completed", result: { ok: true } });
    await atlas.saveThread({ thread_id: "th2", resource_id: "r", title: "Bye" });
    await atlas.deleteThread({ thread_id: "th2" });
    assert.deepEqual(warnings, []);

    const one = async (view: string, filter: Record<string, unknown>) =>
      (await client.query(view, { filter })).rows;
    assert.equal((await one("threads", { thread_id: "th1" }))[0]!["messages"], 2);
    assert.equal((await one("messages", { thread_id: "th1" })).length, 2);
    assert.deepEqual(await one("threads", { thread_id: "th2" }), []);
    assert.equal((await one("workflow_runs", { run_id: "run1" }))[0]!["status"], "running");
    assert.equal((await one("traces", { span_id: "sp1" }))[0]!["trace_id"], "tr1");
    assert.equal((await one("evals", { eval_id: "e1" }))[0]!["score"], 0.5);
    assert.equal((await one("workflows", { workflow_id: "wf1" }))[0]!["executions"], 1);
    assert.equal((await one("workflow_executions", { execution_id: "x1" }))[0]!["status"], "done");
    assert.equal((await one("assets", { asset_id: "as1" }))[0]!["downloads"], 2);
    assert.deepEqual(await one("assets", { asset_id: "as2" }), []);
    assert.equal((await one("deployments", { deployment_id: "d1" }))[0]!["status"], "ready");
    assert.equal((await one("agent_jobs", { job_id: "j1" }))[0]!["status"], "completed");
    const { events } = await client.read({ stream: "thread:th1" });
    assert.deepEqual(events.map((e) => e.type), ["ThreadSaved", "MessageSaved", "MessageSaved"]);
  });

  test("a pack write missing a required field resolves to null with a warning, online and offline", async () => {
    const before = warnings.length;
    const bad = { thread_id: "t", resource_id: "r" } as unknown as { thread_id: string; resource_id: string; title: string };
    assert.equal(await atlas.saveThread(bad), null);
    const offline = new Atlas({ socket: `${daemon.root}/none.sock`, dataDir: daemon.dataDir, warn: (m) => warnings.push(m) });
    assert.equal(await offline.saveThread(bad), null);
    offline.close();
    assert.equal(warnings.length, before + 2);
  });
});
