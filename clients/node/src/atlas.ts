/**
 * The ATLAS facade: the functions of the old best-effort Convex module, with
 * the same names, signatures and return types, now durable. An orchestrator
 * switches by changing its import to `atlasd-client/atlas`.
 *
 * Writes record an event (appended by the daemon, or spooled when it is
 * down) stamped with the time of the call. They never throw: a refused
 * write (a bad argument, an unwritable spool) logs a warning and resolves to
 * `null`, as the old module did when Convex was down. Reads answer from the
 * daemon's views and resolve to `[]` when no daemon answers.
 *
 * Ids: `startConvexBuild` and `storeConvexPattern` make new ids (UUIDv7) and
 * return them; `logConvexTask` returns the task id it was given (with the
 * build id, the key of the task's row); `logConvexExecution` returns the
 * execution id (the key of its `executions` row).
 *
 * Which build an execution belongs to (`logConvexExecution` takes only a
 * task id), first answer wins:
 *   1. the build of the latest `logConvexTask` call for that task id made
 *      through this facade in this process;
 *   2. the daemon's `tasks` view: the most recently updated task with that
 *      id (on a tie, the one of the greater build id: for UUIDv7 build ids,
 *      the build started later);
 *   3. the build this facade started most recently and has not completed.
 * With none of these, nothing is written: a warning, and `null`.
 *
 * The module-level functions share one `Atlas` made on first use from the
 * environment (`ATLASD_SOCKET`, `ATLASD_DATA_DIR`); `configureAtlas()`
 * replaces it, `closeAtlas()` closes it. Its connection does not keep the
 * process alive while idle.
 */
import { AtlasdClient, type ClientOptions } from "./client.js";
import { DaemonUnreachable, Unavailable } from "./errors.js";
import { newEventId } from "./ids.js";
import { streamFor } from "./packs.js";
import type { AppendResult, Row } from "./types.js";

export type BuildStatus = "completed" | "failed";
export type TaskStatus = "pending" | "ready" | "running" | "done" | "failed" | "blocked";

export interface AtlasOptions extends ClientOptions {
  /** A client to use instead of one made from the other options (not closed by `close()`). */
  client?: AtlasdClient;
  /** Attached to every event written, e.g. `{tool: "orchestrator"}`. */
  meta?: Record<string, unknown>;
  /** Where warnings go (default `console.warn`). */
  warn?: (message: string, error: unknown) => void;
}

// Pack event data, as the packs define them (`?`: optional).
export interface ThreadSavedData { thread_id: string; resource_id: string; title: string; metadata?: Record<string, unknown> }
export interface MessageSavedData { message_id: string; thread_id: string; role: string; content: unknown; type?: string }
export interface ThreadDeletedData { thread_id: string }
export interface WorkflowRunSavedData { run_id: string; workflow_name: string; status: string; snapshot: unknown }
export interface TraceRecordedData {
  trace_id: string; span_id: string; name: string; parent_span_id?: string;
  start_ms: number; end_ms: number; attributes?: Record<string, unknown>;
}
export interface EvalRecordedData {
  eval_id: string; agent_name: string; metric_name: string; score: number;
  run_id?: string; input?: unknown; output?: unknown;
}
export interface WorkflowSavedData { workflow_id: string; name: string; definition: unknown }
export interface WorkflowExecutionSavedData { execution_id: string; workflow_id: string; status: string; state: unknown }
export interface AssetSavedData { asset_id: string; name: string; category: string; tags: string[] }
export interface AssetIdData { asset_id: string }
export interface DeploymentRecordedData { deployment_id: string; site_id: string; status: string; url?: string; commit?: string }
export interface DeploymentStatusChangedData { deployment_id: string; status: string }
export interface AgentJobStartedData { job_id: string; agent: string; project_id?: string; task_id?: string }
export interface AgentJobFinishedData { job_id: string; status: "completed" | "failed"; result?: unknown; error?: string }

/** Optional arguments left unset are omitted rather than sent as null. */
function compact(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) if (value !== undefined && value !== null) out[key] = value;
  return out;
}

function isDown(error: unknown): boolean {
  return error instanceof DaemonUnreachable || error instanceof Unavailable;
}

/** The facade over one client; see the module doc. */
export class Atlas {
  readonly client: AtlasdClient;
  readonly meta: Record<string, unknown> | undefined;
  private readonly ownsClient: boolean;
  private readonly warn: (message: string, error: unknown) => void;
  /** task id -> the build of its latest `logConvexTask` call. */
  private readonly taskBuilds = new Map<string, string>();
  /** Builds started here and not completed, oldest first. */
  private readonly openBuilds: string[] = [];

  constructor(options: AtlasOptions = {}) {
    const { client, meta, warn, ...clientOptions } = options;
    this.ownsClient = client === undefined;
    this.client = client ?? new AtlasdClient({ unrefWhenIdle: true, ...clientOptions });
    this.meta = meta;
    this.warn = warn ?? ((message, error) => console.warn(message, error));
  }

  close(): void {
    if (this.ownsClient) this.client.close();
  }

  /** Append one event; never throws (see the module doc). */
  private async write(stream: string, type: string, data: Record<string, unknown>): Promise<AppendResult | null> {
    try {
      return await this.client.append({ stream, type, data: compact(data), ...(this.meta ? { meta: this.meta } : {}) });
    } catch (error) {
      this.warn(`atlasd: ${type} not recorded:`, error);
      return null;
    }
  }

  private async writePack(type: string, data: object): Promise<AppendResult | null> {
    let stream: string;
    try {
      stream = streamFor(type, data as Record<string, unknown>);
    } catch (error) {
      this.warn(`atlasd: ${type} not recorded:`, error);
      return null;
    }
    return this.write(stream, type, data as Record<string, unknown>);
  }

  /** Record that a build started; resolves to its new id (null if it could not be recorded). */
  async startConvexBuild(prdId: string, prdName: string): Promise<string | null> {
    const buildId = newEventId();
    const result = await this.write(`build:${buildId}`, "BuildStarted", {
      build_id: buildId,
      prd_id: prdId,
      prd_name: prdName,
    });
    if (result === null) return null;
    this.openBuilds.push(buildId);
    return buildId;
  }

  /** Record that a build ended. */
  async completeConvexBuild(buildId: string, status: "completed" | "failed", error?: string): Promise<void> {
    const result = await this.write(`build:${buildId}`, "BuildCompleted", { build_id: buildId, status, error });
    if (result !== null) {
      const at = this.openBuilds.indexOf(buildId);
      if (at >= 0) this.openBuilds.splice(at, 1);
    }
  }

  /** Record a task of a build (again to update it); resolves to the task id. */
  async logConvexTask(
    buildId: string,
    taskId: string,
    title: string,
    agent: string,
    status: "pending" | "ready" | "running" | "done" | "failed" | "blocked",
    dependencies: string[],
    phase: number,
  ): Promise<string | null> {
    const result = await this.write(`build:${buildId}`, "TaskLogged", {
      build_id: buildId,
      task_id: taskId,
      title,
      agent,
      status,
      dependencies,
      phase,
    });
    if (result === null) return null;
    this.taskBuilds.set(taskId, buildId);
    return taskId;
  }

  /** Move a task to `status` (`running` counts an attempt). */
  async setConvexTaskStatus(buildId: string, taskId: string, status: TaskStatus, error?: string): Promise<void> {
    await this.write(`build:${buildId}`, "TaskStatusChanged", { build_id: buildId, task_id: taskId, status, error });
  }

  /** The build a task belongs to (the rule in the module doc), or null. */
  async buildOfTask(taskId: string): Promise<string | null> {
    const known = this.taskBuilds.get(taskId);
    if (known !== undefined) return known;
    try {
      const rows = await this.client.queryAll("tasks", { filter: { task_id: taskId } });
      let best: Row | undefined;
      for (const row of rows) {
        // Rows come in key order (build_id, task_id): on a tie the later build id wins,
        // which for the facade's UUIDv7 build ids is the build started later.
        if (best === undefined || Number(row["updated_at"] ?? 0) >= Number(best["updated_at"] ?? 0)) best = row;
      }
      if (best !== undefined && typeof best["build_id"] === "string") return best["build_id"];
    } catch (error) {
      if (!isDown(error)) this.warn("atlasd: cannot look the task up in the tasks view:", error);
    }
    return this.openBuilds.at(-1) ?? null;
  }

  /** Record one model call of a task; resolves to the execution id. */
  async logConvexExecution(
    taskId: string,
    agent: string,
    model: string,
    prompt: string,
    response: string,
    gatesPassed: boolean,
    duration: number,
    error?: string,
  ): Promise<string | null> {
    const buildId = await this.buildOfTask(taskId);
    if (buildId === null) {
      this.warn(`atlasd: ExecutionLogged not recorded:`, new Error(`no build is known for task ${taskId}`));
      return null;
    }
    const result = await this.write(`build:${buildId}`, "ExecutionLogged", {
      build_id: buildId,
      task_id: taskId,
      agent,
      model,
      prompt,
      response,
      gates_passed: gatesPassed,
      duration_ms: duration,
      error,
    });
    return result === null ? null : result.eventId;
  }

  /** Store a pattern; resolves to its new id. */
  async storeConvexPattern(
    name: string,
    description: string,
    code: string,
    language: string,
    tags: string[],
  ): Promise<string | null> {
    const patternId = newEventId();
    const result = await this.write(`pattern:${patternId}`, "PatternStored", {
      pattern_id: patternId,
      name,
      description,
      code,
      language,
      tags,
    });
    return result === null ? null : patternId;
  }

  /** Patterns in `language` having every tag of `tags` (both optional); `[]` when no daemon answers. */
  // `any[]`: the old module's return type, kept so callers compile unchanged
  async queryConvexPatterns(language?: string, tags?: string[]): Promise<any[]> {
    const filter: Record<string, unknown> = {};
    if (language !== undefined) filter["language"] = language;
    if (tags !== undefined && tags.length > 0) filter["tags"] = tags;
    try {
      return await this.client.queryAll("patterns", Object.keys(filter).length > 0 ? { filter } : {});
    } catch (error) {
      if (!isDown(error)) throw error;
      this.warn("atlasd: daemon unavailable, returning empty patterns list:", error);
      return [];
    }
  }

  /** Record an insight, optionally tied to a build, task or pattern; resolves to its new id. */
  async recordConvexLearning(
    insight: string,
    category: string,
    buildId?: string,
    taskId?: string,
    patternId?: string,
  ): Promise<string | null> {
    const learningId = newEventId();
    const result = await this.write(`learning:${learningId}`, "LearningRecorded", {
      learning_id: learningId,
      insight,
      category,
      build_id: buildId,
      task_id: taskId,
      pattern_id: patternId,
    });
    return result === null ? null : learningId;
  }

  // Pack events: the same never-throwing writes; the stream is the pack's.
  saveThread(data: ThreadSavedData): Promise<AppendResult | null> { return this.writePack("ThreadSaved", data); }
  saveMessage(data: MessageSavedData): Promise<AppendResult | null> { return this.writePack("MessageSaved", data); }
  deleteThread(data: ThreadDeletedData): Promise<AppendResult | null> { return this.writePack("ThreadDeleted", data); }
  saveWorkflowRun(data: WorkflowRunSavedData): Promise<AppendResult | null> { return this.writePack("WorkflowRunSaved", data); }
  recordTrace(data: TraceRecordedData): Promise<AppendResult | null> { return this.writePack("TraceRecorded", data); }
  recordEval(data: EvalRecordedData): Promise<AppendResult | null> { return this.writePack("EvalRecorded", data); }
  saveWorkflow(data: WorkflowSavedData): Promise<AppendResult | null> { return this.writePack("WorkflowSaved", data); }
  saveWorkflowExecution(data: WorkflowExecutionSavedData): Promise<AppendResult | null> { return this.writePack("WorkflowExecutionSaved", data); }
  saveAsset(data: AssetSavedData): Promise<AppendResult | null> { return this.writePack("AssetSaved", data); }
  assetDownloaded(data: AssetIdData): Promise<AppendResult | null> { return this.writePack("AssetDownloaded", data); }
  deleteAsset(data: AssetIdData): Promise<AppendResult | null> { return this.writePack("AssetDeleted", data); }
  recordDeployment(data: DeploymentRecordedData): Promise<AppendResult | null> { return this.writePack("DeploymentRecorded", data); }
  setDeploymentStatus(data: DeploymentStatusChangedData): Promise<AppendResult | null> { return this.writePack("DeploymentStatusChanged", data); }
  startAgentJob(data: AgentJobStartedData): Promise<AppendResult | null> { return this.writePack("AgentJobStarted", data); }
  finishAgentJob(data: AgentJobFinishedData): Promise<AppendResult | null> { return this.writePack("AgentJobFinished", data); }
}

let shared: Atlas | null = null;

function atlas(): Atlas {
  shared ??= new Atlas();
  return shared;
}

/** Replace the facade the module functions use (closing the previous one). */
export function configureAtlas(options: AtlasOptions = {}): Atlas {
  shared?.close();
  shared = new Atlas(options);
  return shared;
}

/** Close the facade the module functions use; the next call makes a new one. */
export function closeAtlas(): void {
  shared?.close();
  shared = null;
}

// The old module's functions, with its exact signatures.

export async function startConvexBuild(prdId: string, prdName: string): Promise<string | null> {
  return atlas().startConvexBuild(prdId, prdName);
}

export async function completeConvexBuild(
  buildId: string,
  status: "completed" | "failed",
  error?: string,
): Promise<void> {
  return atlas().completeConvexBuild(buildId, status, error);
}

export async function logConvexTask(
  buildId: string,
  taskId: string,
  title: string,
  agent: string,
  status: "pending" | "ready" | "running" | "done" | "failed" | "blocked",
  dependencies: string[],
  phase: number,
): Promise<string | null> {
  return atlas().logConvexTask(buildId, taskId, title, agent, status, dependencies, phase);
}

export async function logConvexExecution(
  taskId: string,
  agent: string,
  model: string,
  prompt: string,
  response: string,
  gatesPassed: boolean,
  duration: number,
  error?: string,
): Promise<string | null> {
  return atlas().logConvexExecution(taskId, agent, model, prompt, response, gatesPassed, duration, error);
}

export async function storeConvexPattern(
  name: string,
  description: string,
  code: string,
  language: string,
  tags: string[],
): Promise<string | null> {
  return atlas().storeConvexPattern(name, description, code, language, tags);
}

// `any[]`: the old module's return type, kept so callers compile unchanged
export async function queryConvexPatterns(language?: string, tags?: string[]): Promise<any[]> {
  return atlas().queryConvexPatterns(language, tags);
}

export async function setConvexTaskStatus(buildId: string, taskId: string, status: TaskStatus, error?: string): Promise<void> {
  return atlas().setConvexTaskStatus(buildId, taskId, status, error);
}

export async function recordConvexLearning(
  insight: string,
  category: string,
  buildId?: string,
  taskId?: string,
  patternId?: string,
): Promise<string | null> {
  return atlas().recordConvexLearning(insight, category, buildId, taskId, patternId);
}

// Pack events through the shared facade.
export const saveThread = (data: ThreadSavedData) => atlas().saveThread(data);
export const saveMessage = (data: MessageSavedData) => atlas().saveMessage(data);
export const deleteThread = (data: ThreadDeletedData) => atlas().deleteThread(data);
export const saveWorkflowRun = (data: WorkflowRunSavedData) => atlas().saveWorkflowRun(data);
export const recordTrace = (data: TraceRecordedData) => atlas().recordTrace(data);
export const recordEval = (data: EvalRecordedData) => atlas().recordEval(data);
export const saveWorkflow = (data: WorkflowSavedData) => atlas().saveWorkflow(data);
export const saveWorkflowExecution = (data: WorkflowExecutionSavedData) => atlas().saveWorkflowExecution(data);
export const saveAsset = (data: AssetSavedData) => atlas().saveAsset(data);
export const assetDownloaded = (data: AssetIdData) => atlas().assetDownloaded(data);
export const deleteAsset = (data: AssetIdData) => atlas().deleteAsset(data);
export const recordDeployment = (data: DeploymentRecordedData) => atlas().recordDeployment(data);
export const setDeploymentStatus = (data: DeploymentStatusChangedData) => atlas().setDeploymentStatus(data);
export const startAgentJob = (data: AgentJobStartedData) => atlas().startAgentJob(data);
export const finishAgentJob = (data: AgentJobFinishedData) => atlas().finishAgentJob(data);
