/**
 * A real `python -m atlasd.daemon` subprocess on a short temp socket, for tests.
 *
 * The interpreter is `ATLASD_PYTHON`, else the repository's `.venv/bin/python`
 * (the daemon of this checkout). Each daemon gets its own directory under
 * /tmp (short, for AF_UNIX's 108-byte path limit), removed by `remove()`;
 * its stderr goes to `ROOT/daemon.log`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (build/test/support -> clients/node -> repo). */
export const REPO = resolve(here, "..", "..", "..", "..", "..");
export const PYTHON = process.env["ATLASD_PYTHON"] ?? join(REPO, ".venv", "bin", "python");

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

/** The environment without atlasd/systemd settings. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(ATLASD_|LISTEN_|WATCHDOG_)/.test(key)) continue;
    if (["CONVEX_URL", "NOTIFY_SOCKET", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"].includes(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** One raw request on a fresh connection: the answer line, decoded. */
export function rawRequest(socket: string, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const conn = createConnection({ path: socket });
    let text = "";
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(JSON.stringify(request) + "\n"));
    conn.on("data", (chunk: string) => {
      text += chunk;
      const newline = text.indexOf("\n");
      if (newline >= 0) {
        conn.destroy();
        resolvePromise(JSON.parse(text.slice(0, newline)) as Record<string, unknown>);
      }
    });
    conn.on("error", reject);
    conn.on("close", () => reject(new Error("closed before an answer")));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Daemon {
  readonly socket: string;
  readonly dataDir: string;
  private proc: ChildProcess | null = null;

  /** `env`: variables for the daemon on top of the cleaned environment. */
  constructor(
    readonly root: string = mkdtempSync("/tmp/atn-"),
    private readonly env: Record<string, string> = {},
  ) {
    this.socket = join(root, "a.sock");
    this.dataDir = join(root, "data");
  }

  get logPath(): string {
    return join(this.root, "daemon.log");
  }

  log(): string {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Start the subprocess and wait until it answers ping. */
  async start(): Promise<this> {
    const log = openSync(this.logPath, "a");
    try {
      this.proc = spawn(
        PYTHON,
        ["-m", "atlasd.daemon", "--socket", this.socket, "--data-dir", this.dataDir],
        { cwd: REPO, env: cleanEnv(this.env), stdio: ["ignore", log, log] },
      );
    } finally {
      closeSync(log);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!this.running) throw new Error(`daemon exited before ready:\n${this.log()}`);
      try {
        const answer = await rawRequest(this.socket, { op: "ping" });
        if (answer["ok"] === true) return this;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`daemon not ready:\n${this.log()}`);
      await sleep(20);
    }
  }

  /** SIGTERM (or `signal`), wait for the exit, resolve with its code. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const proc = this.proc;
    if (proc === null) return null;
    this.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop it and remove its directory. */
  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Run `code` in the repository's Python; its stdout, decoded as JSON. */
export function python(code: string, input?: string): unknown {
  const result = spawnSync(PYTHON, ["-c", code], {
    cwd: REPO,
    env: cleanEnv(),
    input,
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`python failed (${result.status}):\n${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Poll `check` until it returns a truthy value (or time runs out). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(50);
  }
}
