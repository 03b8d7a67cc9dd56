/**
 * The five views as a pure fold over events (docs/views.md), shared by the
 * ingest mutation and the tests.
 *
 * {@link ViewRows} holds the rows one batch touches, keyed; the mutation
 * loads them first, folds the batch's new events in seq order with
 * {@link project}, then writes each changed row once.
 */

export type BuildRow = {
  build_id: string;
  prd_id: string | null;
  prd_name: string | null;
  status: string;
  error: string | null;
  started_at: number | null;
  completed_at: number | null;
  tasks_total: number;
  tasks_done: number;
  tasks_failed: number;
};

export type TaskRow = {
  build_id: string;
  task_id: string;
  title: string | null;
  agent: string | null;
  status: string;
  dependencies: string[];
  phase: number | null;
  attempts: number;
  error: string | null;
  created_at: number;
  updated_at: number;
};

export type ExecutionRow = {
  event_id: string;
  build_id: string;
  task_id: string;
  agent: string | null;
  model: string | null;
  gates_passed: boolean | null;
  duration_ms: number | null;
  error: string | null;
  recorded_at: number;
};

export type PatternRow = {
  pattern_id: string;
  name: string | null;
  description: string | null;
  code: string | null;
  language: string | null;
  tags: string[];
  created_at: number;
};

export type LearningRow = {
  learning_id: string;
  insight: string | null;
  category: string | null;
  build_id: string | null;
  task_id: string | null;
  pattern_id: string | null;
  recorded_at: number;
};

export type ViewName = "builds" | "tasks" | "executions" | "patterns" | "learnings";
export const VIEW_NAMES: readonly ViewName[] = ["builds", "tasks", "executions", "patterns", "learnings"];

/** The contract's columns of each view, in the contract's order. */
export const COLUMNS: Record<ViewName, readonly string[]> = {
  builds: ["build_id", "prd_id", "prd_name", "status", "error", "started_at", "completed_at", "tasks_total", "tasks_done", "tasks_failed"],
  tasks: ["build_id", "task_id", "title", "agent", "status", "dependencies", "phase", "attempts", "error", "created_at", "updated_at"],
  executions: ["event_id", "build_id", "task_id", "agent", "model", "gates_passed", "duration_ms", "error", "recorded_at"],
  patterns: ["pattern_id", "name", "description", "code", "language", "tags", "created_at"],
  learnings: ["learning_id", "insight", "category", "build_id", "task_id", "pattern_id", "recorded_at"],
};

/** The key columns of each view, for sorting and lookups. */
export const KEYS: Record<ViewName, readonly string[]> = {
  builds: ["build_id"],
  tasks: ["build_id", "task_id"],
  executions: ["event_id"],
  patterns: ["pattern_id"],
  learnings: ["learning_id"],
};

/** The part of an event the views read. */
export type ProjectedEvent = {
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  recorded_at: number;
  occurred_at?: number;
};

// Reading fields: a value of another JSON type reads as absent (views.md).
function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}
function num(value: unknown): number | null {
  return typeof value === "number" ? value : null;
}
function bool(value: unknown): boolean | null {
  return typeof value === "boolean" ? value : null;
}
function strings(value: unknown): string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string") ? [...value] : [];
}
function key(value: unknown): string | null {
  return typeof value === "string" && value.length > 0 ? value : null;
}

/** The lookup key of a task row. */
export function taskKey(buildId: string, taskId: string): string {
  return JSON.stringify([buildId, taskId]);
}

/** A row the batch loaded (with its document id) or created, and whether it changed. */
export type Slot<Row> = { id: string | null; row: Row | null; dirty: boolean };

/**
 * The rows of one batch. Every key an event may touch must be loaded (see
 * {@link rowKeys}) before {@link project} runs; executions are only ever
 * inserted, because their key is the id of a new event.
 */
export class ViewRows {
  builds = new Map<string, Slot<BuildRow>>();
  tasks = new Map<string, Slot<TaskRow>>();
  patterns = new Map<string, Slot<PatternRow>>();
  learnings = new Map<string, Slot<LearningRow>>();
  executions: ExecutionRow[] = [];
}

/** Keys of the rows `events` may touch, per view. */
export function rowKeys(events: readonly ProjectedEvent[]): {
  builds: Set<string>;
  tasks: Map<string, [string, string]>;
  patterns: Set<string>;
  learnings: Set<string>;
} {
  const out = { builds: new Set<string>(), tasks: new Map<string, [string, string]>(), patterns: new Set<string>(), learnings: new Set<string>() };
  for (const { type, data } of events) {
    const buildId = key(data.build_id);
    const taskId = key(data.task_id);
    if (type === "BuildStarted" || type === "BuildCompleted") {
      if (buildId !== null) out.builds.add(buildId);
    } else if (type === "TaskLogged" || type === "TaskStatusChanged") {
      if (buildId !== null && taskId !== null) {
        out.builds.add(buildId);
        out.tasks.set(taskKey(buildId, taskId), [buildId, taskId]);
      }
    } else if (type === "PatternStored") {
      const id = key(data.pattern_id);
      if (id !== null) out.patterns.add(id);
    } else if (type === "LearningRecorded") {
      const id = key(data.learning_id);
      if (id !== null) out.learnings.add(id);
    }
  }
  return out;
}

function slot<Row>(map: Map<string, Slot<Row>>, k: string): Slot<Row> {
  const found = map.get(k);
  if (found === undefined) throw new Error(`view row ${k} was not loaded before projecting`);
  return found;
}

function ensureBuild(rows: ViewRows, buildId: string): BuildRow {
  const s = slot(rows.builds, buildId);
  s.dirty = true;
  s.row ??= {
    build_id: buildId, prd_id: null, prd_name: null, status: "running", error: null,
    started_at: null, completed_at: null, tasks_total: 0, tasks_done: 0, tasks_failed: 0,
  };
  return s.row;
}

function countStatus(build: BuildRow, status: string, by: number): void {
  if (status === "done") build.tasks_done += by;
  else if (status === "failed") build.tasks_failed += by;
}

/** The task row, created if needed with the build's counts kept in step. */
function ensureTask(rows: ViewRows, build: BuildRow, taskId: string, status: string, t: number): TaskRow {
  const s = slot(rows.tasks, taskKey(build.build_id, taskId));
  s.dirty = true;
  if (s.row === null) {
    s.row = {
      build_id: build.build_id, task_id: taskId, title: null, agent: null, status,
      dependencies: [], phase: null, attempts: 0, error: null, created_at: t, updated_at: t,
    };
    build.tasks_total += 1;
    countStatus(build, status, 1);
  }
  return s.row;
}

function setStatus(build: BuildRow, task: TaskRow, status: string): void {
  countStatus(build, task.status, -1);
  task.status = status;
  countStatus(build, status, 1);
}

/** Fold one event into the views; events no view projects change nothing. */
export function project(rows: ViewRows, event: ProjectedEvent): void {
  const { data } = event;
  // View times are when the thing happened (older events carry only recorded_at).
  const t = event.occurred_at ?? event.recorded_at;
  const buildId = key(data.build_id);
  const taskId = key(data.task_id);
  switch (event.type) {
    case "BuildStarted": {
      if (buildId === null) return;
      const build = ensureBuild(rows, buildId);
      build.prd_id = str(data.prd_id);
      build.prd_name = str(data.prd_name);
      build.started_at = t;
      return;
    }
    case "BuildCompleted": {
      const status = str(data.status);
      if (buildId === null || status === null) return;
      const build = ensureBuild(rows, buildId);
      build.status = status;
      build.error = str(data.error);
      build.completed_at = t;
      return;
    }
    case "TaskLogged": {
      const status = str(data.status);
      if (buildId === null || taskId === null || status === null) return;
      const build = ensureBuild(rows, buildId);
      const task = ensureTask(rows, build, taskId, status, t);
      task.title = str(data.title);
      task.agent = str(data.agent);
      setStatus(build, task, status);
      task.dependencies = strings(data.dependencies);
      task.phase = num(data.phase);
      task.updated_at = t;
      return;
    }
    case "TaskStatusChanged": {
      const status = str(data.status);
      if (buildId === null || taskId === null || status === null) return;
      const build = ensureBuild(rows, buildId);
      const task = ensureTask(rows, build, taskId, status, t);
      setStatus(build, task, status);
      task.error = str(data.error);
      if (status === "running") task.attempts += 1;
      task.updated_at = t;
      return;
    }
    case "ExecutionLogged": {
      if (buildId === null || taskId === null) return;
      rows.executions.push({
        event_id: event.event_id, build_id: buildId, task_id: taskId,
        agent: str(data.agent), model: str(data.model), gates_passed: bool(data.gates_passed),
        duration_ms: num(data.duration_ms), error: str(data.error), recorded_at: t,
      });
      return;
    }
    case "PatternStored": {
      const patternId = key(data.pattern_id);
      if (patternId === null) return;
      const s = slot(rows.patterns, patternId);
      s.dirty = true;
      s.row = {
        pattern_id: patternId, name: str(data.name), description: str(data.description),
        code: str(data.code), language: str(data.language), tags: strings(data.tags),
        created_at: s.row?.created_at ?? t,
      };
      return;
    }
    case "LearningRecorded": {
      const learningId = key(data.learning_id);
      if (learningId === null) return;
      const s = slot(rows.learnings, learningId);
      s.dirty = true;
      s.row = {
        learning_id: learningId, insight: str(data.insight), category: str(data.category),
        build_id: str(data.build_id), task_id: str(data.task_id), pattern_id: str(data.pattern_id),
        recorded_at: t,
      };
      return;
    }
    default:
      return;
  }
}

/** `row` reduced to the contract's columns of `view` (drops system and bookkeeping fields). */
export function contractRow(view: ViewName, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(COLUMNS[view].map((column) => [column, row[column] ?? null]));
}
