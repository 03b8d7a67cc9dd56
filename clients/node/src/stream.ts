/**
 * `subscribe` and `watch`: a connection of their own, turned into a one-way
 * stream by the request, read as an async iterator.
 *
 * Resource handling: at most `HIGH_WATER` lines wait unread; above that the
 * socket is paused, so a slow consumer holds bounded memory (the daemon then
 * tells it `slow_consumer` rather than buffering without bound). `close()`,
 * `break` out of `for await`, or the `signal` aborting end the iteration and
 * close the connection.
 *
 * Error handling: an error line from the daemon (`slow_consumer`, a bad
 * filter) is thrown by the next `next()` as its error class, and ends the
 * stream; so does the connection dropping (`DaemonUnreachable`).
 */
import type { Socket } from "node:net";

import { AtlasdError, DaemonUnreachable, Internal, errorFromWire } from "./errors.js";
import { LineSplitter, openSocket, parseLine, type ResponseLine } from "./connection.js";

const HIGH_WATER = 1024;
const LOW_WATER = 256;

type Waiter = {
  resolve: (result: IteratorResult<ResponseLine>) => void;
  reject: (error: unknown) => void;
};

/** The lines after the request of one subscribe/watch connection. */
class LineStream {
  private socket: Socket | null = null;
  private readonly queue: ResponseLine[] = [];
  private waiter: Waiter | null = null;
  private ended: AtlasdError | "closed" | null = null;
  private paused = false;

  constructor(
    private readonly path: string,
    private readonly timeoutMs: number,
    private readonly request: Record<string, unknown>,
  ) {}

  async open(): Promise<void> {
    const socket = await openSocket(this.path, this.timeoutMs);
    if (this.ended !== null) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    const splitter = new LineSplitter((line) => this.push(parseLine(line)));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      try {
        splitter.push(chunk);
      } catch (error) {
        this.end(error instanceof AtlasdError ? error : new Internal(String(error)));
      }
    });
    socket.on("error", (error) => this.end(new DaemonUnreachable(`subscription on ${this.path}: ${error.message}`)));
    socket.on("close", () => this.end(new DaemonUnreachable(`the daemon closed the stream on ${this.path}`)));
    socket.write(JSON.stringify({ id: 1, ...this.request }) + "\n");
  }

  private push(line: ResponseLine): void {
    if (this.waiter !== null) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ value: line, done: false });
      return;
    }
    this.queue.push(line);
    if (!this.paused && this.queue.length >= HIGH_WATER && this.socket !== null) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private end(reason: AtlasdError | "closed"): void {
    if (this.ended !== null) return;
    this.ended = reason;
    this.socket?.destroy();
    if (this.waiter !== null) {
      const waiter = this.waiter;
      this.waiter = null;
      if (reason === "closed") waiter.resolve({ value: undefined, done: true });
      else waiter.reject(reason);
    }
  }

  next(): Promise<IteratorResult<ResponseLine>> {
    const line = this.queue.shift();
    if (line !== undefined) {
      if (this.paused && this.queue.length <= LOW_WATER && this.socket !== null) {
        this.paused = false;
        this.socket.resume();
      }
      return Promise.resolve({ value: line, done: false });
    }
    if (this.ended === "closed") return Promise.resolve({ value: undefined, done: true });
    if (this.ended !== null) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  close(): void {
    this.queue.length = 0;
    this.end("closed");
  }
}

/** Common to `Subscription` and `Watch`: opening, closing, the iterator protocol. */
abstract class OneWayStream<T> implements AsyncIterableIterator<T> {
  protected readonly lines: LineStream;
  private readonly started: Promise<void>;
  private finished = false;

  constructor(path: string, timeoutMs: number, request: Record<string, unknown>, signal?: AbortSignal) {
    this.lines = new LineStream(path, timeoutMs, request);
    if (signal?.aborted) this.lines.close();
    signal?.addEventListener("abort", () => this.close(), { once: true });
    this.started = this.lines.open().then(() => this.confirm());
    // the first next() reports a failure to open; nobody may be listening before then
    this.started.catch(() => undefined);
  }

  /** Resolves once the daemon accepted the request (rejects with its refusal). */
  get ready(): Promise<void> {
    return this.started;
  }

  protected async confirm(): Promise<void> {}

  protected abstract convert(line: ResponseLine): T;

  async next(): Promise<IteratorResult<T>> {
    if (this.finished) return { value: undefined, done: true };
    try {
      await this.started;
      const result = await this.lines.next();
      if (result.done) {
        this.finished = true;
        return { value: undefined, done: true };
      }
      return { value: this.convert(result.value), done: false };
    } catch (error) {
      this.finished = true;
      this.lines.close();
      throw error;
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.close();
    return { value: undefined, done: true };
  }

  /** Stop: the connection closes and the iteration ends. */
  close(): void {
    this.finished = true;
    this.lines.close();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

function failure(line: ResponseLine): AtlasdError {
  if (line.ok === false) return errorFromWire(line.error);
  return new Internal(`unexpected line from the daemon: ${JSON.stringify(line).slice(0, 200)}`);
}

/** Events after `fromSeq`, then live ones, until closed. */
export class Subscription<E> extends OneWayStream<E> {
  protected override async confirm(): Promise<void> {
    const first = await this.lines.next();
    if (first.done) return;
    if (first.value.ok !== true) throw failure(first.value);
  }

  protected convert(line: ResponseLine): E {
    if (line.event !== undefined) return line.event as E;
    throw failure(line);
  }
}

/** The rows of a query now, then again each time they change. */
export class Watch<R> extends OneWayStream<R[]> {
  protected convert(line: ResponseLine): R[] {
    if (Array.isArray(line.rows)) return line.rows as R[];
    const result = line.result as { rows?: unknown } | undefined;
    if (line.ok === true && Array.isArray(result?.rows)) return result.rows as R[];
    throw failure(line);
  }
}
