import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";

import { AtlasdClient, type Row } from "atlasd-client";
import {
  Atlas,
  closeAtlas,
  completeConvexBuild,
  configureAtlas,
  logConvexExecution,
  logConvexTask,
  queryConvexPatterns,
  recordConvexLearning,
  setConvexTaskStatus,
  startConvexBuild,
  storeConvexPattern,
} from "atlasd-client/atlas";

import { Daemon, REPO, eventually } from "./support/daemon.js";

function quietAtlas(daemon: Daemon, warnings: string[] = []): Atlas {
  return new Atlas({
    socket: daemon.socket,
    dataDir: daemon.dataDir,
    warn: (message) => warnings.push(message),
  });
}

describe("the facade's lifecycle against a running daemon", () => {
  let daemon: Daemon;
  let client: AtlasdClient;

  before(async () => {
    daemon = await new Daemon().start();
    client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    configureAtlas({ socket: daemon.socket, dataDir: daemon.dataDir, meta: { tool: "test" } });
  });

  after(async () => {
    closeAtlas();
    client.close();
    await daemon.remove();
  });

  test("a whole build through the seed's functions produces the builds, tasks, executions, patterns and learnings rows", async () => {
    const started = Date.now();
    const buildId = await startConvexBuild("prd-7", "Login page");
    assert.ok(buildId);
    assert.equal(await logConvexTask(buildId, "t1", "Write the form", "coder", "pending", [], 1), "t1");
    assert.equal(await logConvexTask(buildId, "t2", "Test it", "tester", "pending", ["t1"], 2), "t2");
    await setConvexTaskStatus(buildId, "t1", "running");
    const executionId = await logConvexExecution("t1", "coder", "model-x", "prompt", "response", true, 5120);
    assert.ok(executionId);
    await setConvexTaskStatus(buildId, "t1", "done");
    await setConvexTaskStatus(buildId, "t2", "failed", "flaky");
    const patternId = await storeConvexPattern("retry", "retry with backoff", "code()", "typescript", ["io", "net"]);
    await storeConvexPattern("other", "d", "c", "python", ["io"]);
    const learningId = await recordConvexLearning("lint before tests", "process", buildId, "t1", patternId ?? undefined);
    await completeConvexBuild(buildId, "failed", "t2 failed");
    const finished = Date.now();

    const [build] = (await client.query("builds", { filter: { build_id: buildId } })).rows;
    assert.deepEqual(
      { ...build, started_at: undefined, completed_at: undefined },
      {
        build_id: buildId, prd_id: "prd-7", prd_name: "Login page", status: "failed", error: "t2 failed",
        started_at: undefined, completed_at: undefined, tasks_total: 2, tasks_done: 1, tasks_failed: 1,
      },
    );
    for (const column of ["started_at", "completed_at"]) {
      const at = build![column] as number;
      assert.ok(at >= started && at <= finished, `${column} ${at} within the calls`);
    }
    const tasks = (await client.query("tasks", { filter: { build_id: buildId } })).rows;
    const t1 = tasks.find((t) => t["task_id"] === "t1")!;
    assert.equal(t1["status"], "done");
    assert.equal(t1["attempts"], 1);
    assert.deepEqual(tasks.find((t) => t["task_id"] === "t2")!["dependencies"], ["t1"]);
    const executions = (await client.query("executions", { filter: { build_id: buildId } })).rows;
    assert.equal(executions.length, 1);
    assert.equal(executions[0]!["event_id"], executionId);
    assert.equal(executions[0]!["task_id"], "t1");
    assert.equal(executions[0]!["gates_passed"], true);
    assert.equal(executions[0]!["duration_ms"], 5120);

    const typescript = await queryConvexPatterns("typescript");
    assert.deepEqual(typescript.map((p: Row) => p["pattern_id"]), [patternId]);
    assert.equal((await queryConvexPatterns(undefined, ["io"])).length, 2);
    assert.equal((await queryConvexPatterns(undefined, ["io", "net"])).length, 1);
    assert.ok((await queryConvexPatterns()).length >= 2);

    const learnings = (await client.query("learnings", { filter: { learning_id: learningId } })).rows;
    assert.equal(learnings[0]!["pattern_id"], patternId);

    const { events } = await client.read({ stream: `build:${buildId}` });
    assert.ok(events.every((e) => e.meta["tool"] === "test"));
    assert.ok(events.every((e) => e.occurred_at! >= started && e.occurred_at! <= finished));
  });

  test("a program that uses the facade and never closes it still exits when its work is done", async () => {
    const script =
      'import { startConvexBuild, logConvexTask } from "atlasd-client/atlas";' +
      'const id = await startConvexBuild("p", "exit");' +
      'await logConvexTask(id, "t", "x", "a", "pending", [], 1);' +
      "console.log(id);";
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: `${REPO}/clients/node`, // where the package name resolves to itself
      env: { ...process.env, ATLASD_SOCKET: daemon.socket, ATLASD_DATA_DIR: daemon.dataDir },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    clearTimeout(timer);
    assert.equal(code, 0);
    const buildId = out.trim();
    const rows = (await client.query("tasks", { filter: { build_id: buildId } })).rows;
    assert.equal(rows.length, 1);
  });

  test("an execution of a task logged by another process finds its build in the tasks view", async () => {
    const warnings: string[] = [];
    const first = quietAtlas(daemon, warnings);
    const other = quietAtlas(daemon, warnings);
    const b1 = (await first.startConvexBuild("p", "one"))!;
    const b2 = (await first.startConvexBuild("p", "two"))!;
    await first.logConvexTask(b1, "shared-task", "old", "a", "done", [], 1);
    await first.logConvexTask(b2, "shared-task", "new", "a", "running", [], 1);
    const executionId = await other.logConvexExecution("shared-task", "a", "m", "p", "r", false, 1);
    const rows = (await client.query("executions", { filter: { event_id: executionId } })).rows;
    assert.equal(rows[0]!["build_id"], b2);
    assert.deepEqual(warnings, []);
    first.close();
    other.close();
  });

  test("an execution of an unknown task goes to the build this facade started last", async () => {
    const atlas = quietAtlas(daemon);
    const buildId = (await atlas.startConvexBuild("p", "n"))!;
    const executionId = await atlas.logConvexExecution("never-logged", "a", "m", "p", "r", true, 3);
    const rows = (await client.query("executions", { filter: { event_id: executionId } })).rows;
    assert.equal(rows[0]!["build_id"], buildId);
    atlas.close();
  });

  test("an execution with no build to attach to is not written: a warning and null", async () => {
    const warnings: string[] = [];
    const atlas = quietAtlas(daemon, warnings);
    assert.equal(await atlas.logConvexExecution("orphan-task", "a", "m", "p", "r", true, 3), null);
    assert.equal(warnings.length, 1);
    atlas.close();
  });

  test("a write the daemon refuses resolves to null with a warning instead of throwing", async () => {
    const warnings: string[] = [];
    const atlas = quietAtlas(daemon, warnings);
    assert.equal(await atlas.completeConvexBuild("b-\u0001", "completed"), undefined);
    assert.equal(await atlas.logConvexTask("b-\u0001", "t", "x", "a", "pending", [], 1), null);
    const sideways = "sideways" as "completed";
    assert.equal(await atlas.completeConvexBuild("b-1", sideways), undefined);
    assert.equal(warnings.length, 3);
    atlas.close();
  });
});

describe("the facade while the daemon stops and restarts", () => {
  let daemon: Daemon;

  beforeEach(async () => {
    daemon = await new Daemon().start();
  });

  afterEach(async () => {
    await daemon.remove();
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) test(`writes made before, during and after a stop by ${signal} all land exactly once; reads answer [] while it is down`, async () => {
    const warnings: string[] = [];
    const atlas = quietAtlas(daemon, warnings);
    const buildId = (await atlas.startConvexBuild("prd", "restart"))!;
    const tasks = Array.from({ length: 300 }, (_, i) => `task-${i}`);
    let resolved = 0;
    let stopped: Promise<number | null> | undefined;
    let inFlightAtStop = 0;
    const writes = tasks.map((taskId, i) =>
      atlas.logConvexTask(buildId, taskId, `title ${i}`, "coder", "pending", [], 1).then((id) => {
        resolved += 1;
        if (resolved === 30) {
          // stop the daemon while the other writes are in flight
          inFlightAtStop = tasks.length - resolved;
          stopped = daemon.stop(signal);
        }
        return id;
      }),
    );
    const ids = await Promise.all(writes);
    assert.ok(inFlightAtStop > 0);
    const code = await stopped;
    assert.equal(code, signal === "SIGTERM" ? 0 : null);
    assert.deepEqual(ids, tasks);

    const patternId = await atlas.storeConvexPattern("offline", "d", "c", "go", []);
    assert.ok(patternId, "a write while the daemon is down returns its id");
    assert.deepEqual(await atlas.queryConvexPatterns("go"), []);
    await atlas.completeConvexBuild(buildId, "completed");

    const spooled = readdirSync(join(daemon.dataDir, "spool")).filter((n) => n.endsWith(".ndjson"));
    assert.ok(spooled.length >= 2, "the writes made while the daemon was down were spooled");

    await daemon.start();
    const client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
    try {
      const build = await eventually(async () => {
        const rows = (await client.query("builds", { filter: { build_id: buildId } })).rows;
        return rows[0]?.["status"] === "completed" && rows[0]["tasks_total"] === 300 ? rows[0] : null;
      });
      assert.equal(build["tasks_total"], 300);
      const logged = await client.read({ stream: `build:${buildId}`, types: ["TaskLogged"], limit: 10_000 });
      assert.equal(logged.events.length, 300);
      assert.equal(new Set(logged.events.map((e) => e.data["task_id"])).size, 300);
      const patterns = await eventually(async () => {
        const found = await atlas.queryConvexPatterns("go");
        return found.length > 0 ? found : null;
      });
      assert.deepEqual(patterns.map((p: Row) => p["pattern_id"]), [patternId]);
    } finally {
      client.close();
      atlas.close();
    }
  });
});
