/**
 * One pipelined connection to the daemon's Unix socket: newline-delimited
 * JSON, many requests in flight, each answer matched to its request by `id`.
 *
 * Resource handling: request lines queued in one turn of the event loop are
 * written together in one `write` (a burst of appends costs one syscall,
 * not one per append). With `unrefWhenIdle` the socket does not keep the
 * process alive while nothing is in flight, so a program that never calls
 * `close()` still exits.
 *
 * Error handling: connecting fails with `DaemonUnreachable` (nobody listens,
 * the socket file is missing, the connect timed out) or `Forbidden` (no
 * permission on the socket). A connection that closes or breaks fails every
 * request in flight with `DaemonUnreachable` and is not used again.
 */
import { createConnection, type Socket } from "node:net";

import { AtlasdError, DaemonUnreachable, Forbidden, Internal } from "./errors.js";

/** Longest answer line accepted: the largest `read` answer stays below it. */
export const MAX_LINE = 256 * 1024 * 1024;

/** One answer line, as the daemon sends it. */
export interface ResponseLine {
  id?: unknown;
  ok?: boolean;
  result?: unknown;
  error?: unknown;
  event?: unknown;
  rows?: unknown;
}

interface Pending {
  resolve: (line: ResponseLine) => void;
  reject: (error: AtlasdError) => void;
}

const UNREACHABLE_CODES = new Set([
  "ENOENT",
  "ECONNREFUSED",
  "ENOTDIR",
  "ECONNRESET",
  "EPIPE",
  "ENOTSOCK",
  "EAGAIN",
]);

/** The error to report when talking to `path` failed with `error`. */
export function connectError(path: string, error: unknown): AtlasdError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === "EACCES" || code === "EPERM") return new Forbidden(`permission denied on socket ${path}`);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new DaemonUnreachable(`no daemon answers on ${path} (${code})`);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new DaemonUnreachable(`cannot connect to ${path}: ${reason}`);
}

/** Open a Unix stream connection to `path`, translating failures (see the module doc). */
export function openSocket(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DaemonUnreachable(`no daemon answers on ${path} (connect timed out)`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(connectError(path, error));
    });
  });
}

/** Splits a UTF-8 text stream into lines, refusing one longer than `MAX_LINE`. */
export class LineSplitter {
  private partial = "";

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    let start = 0;
    let newline = chunk.indexOf("\n");
    if (newline < 0) {
      this.partial += chunk;
      if (this.partial.length > MAX_LINE) throw new Internal("answer line longer than the limit");
      return;
    }
    const first = this.partial + chunk.slice(0, newline);
    this.partial = "";
    if (first) this.onLine(first);
    start = newline + 1;
    while ((newline = chunk.indexOf("\n", start)) >= 0) {
      if (newline > start) this.onLine(chunk.slice(start, newline));
      start = newline + 1;
    }
    this.partial = chunk.slice(start);
  }
}

export function parseLine(line: string): ResponseLine {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Internal(`the daemon sent a line that is not JSON: ${line.slice(0, 120)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Internal(`the daemon sent a line that is not an object: ${line.slice(0, 120)}`);
  }
  return parsed as ResponseLine;
}

/** A pipelined request/answer connection (see the module doc). */
export class Connection {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: string[] = [];
  private flushQueued = false;
  private failure: AtlasdError | null = null;
  private readonly splitter: LineSplitter;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
    private readonly unrefWhenIdle: boolean,
  ) {
    this.splitter = new LineSplitter((line) => this.onLine(line));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      try {
        this.splitter.push(chunk);
      } catch (error) {
        this.fail(error instanceof AtlasdError ? error : new Internal(String(error)));
      }
    });
    socket.on("error", (error) => this.fail(connectError(path, error)));
    socket.on("close", () => this.fail(new DaemonUnreachable(`the daemon closed the connection on ${path}`)));
    if (unrefWhenIdle) socket.unref();
  }

  static async open(path: string, timeoutMs: number, unrefWhenIdle = false): Promise<Connection> {
    return new Connection(await openSocket(path, timeoutMs), path, unrefWhenIdle);
  }

  /** Whether requests can still be sent on this connection. */
  get usable(): boolean {
    return this.failure === null;
  }

  /** Send `{id, op, ...params}` and resolve with its answer line. */
  request(op: string, params: Record<string, unknown>): Promise<ResponseLine> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    const line = JSON.stringify({ id, op, ...params }) + "\n";
    return new Promise<ResponseLine>((resolve, reject) => {
      if (this.pending.size === 0 && this.unrefWhenIdle) this.socket.ref();
      this.pending.set(id, { resolve, reject });
      this.outbox.push(line);
      if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.failure !== null || this.outbox.length === 0) return;
    const text = this.outbox.length === 1 ? this.outbox[0]! : this.outbox.join("");
    this.outbox = [];
    this.socket.write(text);
  }

  private onLine(line: string): void {
    const response = parseLine(line);
    let id = typeof response.id === "number" ? response.id : undefined;
    // Answers come in request order: one the daemon could not tie to its
    // request (id null, e.g. a line it could not read) is the oldest one's.
    if (id === undefined || !this.pending.has(id)) id = this.pending.keys().next().value;
    if (id === undefined) return;
    const waiter = this.pending.get(id)!;
    this.pending.delete(id);
    if (this.pending.size === 0 && this.unrefWhenIdle) this.socket.unref();
    waiter.resolve(response);
  }

  private fail(error: AtlasdError): void {
    if (this.failure === null) this.failure = error;
    this.socket.destroy();
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiting) waiter.reject(this.failure);
  }

  close(): void {
    this.fail(new DaemonUnreachable(`connection to ${this.path} closed by the client`));
  }
}
