import assert from "node:assert/strict";
import { test } from "node:test";

import * as facade from "atlasd-client/atlas";
import * as root from "atlasd-client";

// The seed module's signatures, written out: this file does not compile when one differs.
type Seed = {
  startConvexBuild: (prdId: string, prdName: string) => Promise<string | null>;
  completeConvexBuild: (buildId: string, status: "completed" | "failed", error?: string) => Promise<void>;
  logConvexTask: (
    buildId: string,
    taskId: string,
    title: string,
    agent: string,
    status: "pending" | "ready" | "running" | "done" | "failed" | "blocked",
    dependencies: string[],
    phase: number,
  ) => Promise<string | null>;
  logConvexExecution: (
    taskId: string,
    agent: string,
    model: string,
    prompt: string,
    response: string,
    gatesPassed: boolean,
    duration: number,
    error?: string,
  ) => Promise<string | null>;
  storeConvexPattern: (
    name: string,
    description: string,
    code: string,
    language: string,
    tags: string[],
  ) => Promise<string | null>;
  // `any[]`: the old module's return type, kept so callers compile unchanged
  queryConvexPatterns: (language?: string, tags?: string[]) => Promise<any[]>;
};

type Exactly<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const exact: { [K in keyof Seed]: Exactly<Seed[K], (typeof facade)[K]> } = {
  startConvexBuild: true,
  completeConvexBuild: true,
  logConvexTask: true,
  logConvexExecution: true,
  storeConvexPattern: true,
  queryConvexPatterns: true,
};

test("the facade exports the seed's six functions with its exact signatures, from both entry points", () => {
  for (const name of Object.keys(exact) as (keyof Seed)[]) {
    assert.equal(typeof facade[name], "function", name);
    assert.equal(root[name], facade[name], name);
  }
  assert.equal(facade.logConvexTask.length, 7);
  assert.equal(facade.logConvexExecution.length, 8);
});

test("the facade has a camelCase function for every pack event of the daemon", () => {
  const expected: Record<string, string> = {
    ThreadSaved: "saveThread",
    MessageSaved: "saveMessage",
    ThreadDeleted: "deleteThread",
    WorkflowRunSaved: "saveWorkflowRun",
    TraceRecorded: "recordTrace",
    EvalRecorded: "recordEval",
    WorkflowSaved: "saveWorkflow",
    WorkflowExecutionSaved: "saveWorkflowExecution",
    AssetSaved: "saveAsset",
    AssetDownloaded: "assetDownloaded",
    AssetDeleted: "deleteAsset",
    DeploymentRecorded: "recordDeployment",
    DeploymentStatusChanged: "setDeploymentStatus",
    AgentJobStarted: "startAgentJob",
    AgentJobFinished: "finishAgentJob",
  };
  const packTypes = Object.entries(root.PACK_EVENTS)
    .filter(([, schema]) => schema.pack !== "atlas")
    .map(([type]) => type)
    .sort();
  assert.deepEqual(packTypes, Object.keys(expected).sort());
  for (const name of Object.values(expected)) {
    assert.equal(typeof (facade as Record<string, unknown>)[name], "function", name);
    assert.equal(typeof (facade.Atlas.prototype as unknown as Record<string, unknown>)[name], "function", name);
  }
});
