/**
 * `AtlasdClient`: the daemon's socket protocol, typed, pipelined, with the
 * offline spool.
 *
 * Resource handling: one connection, opened on first use (or by
 * `connect()`) and reopened after it drops; every call made while others
 * are in flight is pipelined on it. `subscribe` and `watch` open a
 * connection each (the protocol makes them one-way). `close()` ends the
 * shared connection.
 *
 * Error handling: a daemon failure rejects with the class of its code (see
 * `errors.ts`). A call whose connection drops is sent once more on a new
 * connection: every append carries its event id (made here when the caller
 * gave none), so a retry never appends twice. When no daemon answers, or it
 * answers `unavailable`, `append` and `appendBatch` write the events to the
 * spool (after the daemon's checks) and resolve with `spooled: true`; an
 * append with `expectedVersion` is never spooled (it cannot be checked
 * offline) and rejects. Every other call rejects with `DaemonUnreachable`.
 */
import { Connection, type ResponseLine } from "./connection.js";
import { AtlasdError, DaemonUnreachable, Internal, Unavailable, errorFromWire } from "./errors.js";
import { newEventId } from "./ids.js";
import { resolveDataDir, resolveSocketPath, spoolDirFor } from "./paths.js";
import { writeSpoolFile } from "./spool.js";
import { Subscription, Watch } from "./stream.js";
import type {
  AppendParams,
  AppendResult,
  AtlasEvent,
  Pong,
  QueryPage,
  QueryParams,
  ReadParams,
  ReadResult,
  Row,
  Status,
  SubscribeParams,
  WatchParams,
} from "./types.js";
import type { EventInput } from "./validation.js";

export interface ClientOptions {
  /** The socket; default `ATLASD_SOCKET`, then the daemon's default. */
  socket?: string;
  /** The data dir whose spool takes offline appends; default `ATLASD_DATA_DIR`, then the daemon's default. */
  dataDir?: string;
  /** Write appends to the spool when no daemon answers (default true). */
  spool?: boolean;
  /** How long a connect may take (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Let the process exit while no call is in flight, even if `close()` is never called. */
  unrefWhenIdle?: boolean;
}

interface WireEvent extends EventInput {
  event_id: string;
  occurred_at: number;
}

function wireEvent(params: AppendParams): WireEvent {
  const event: WireEvent = {
    stream: params.stream,
    type: params.type,
    data: params.data,
    event_id: params.eventId ?? newEventId(),
    occurred_at: params.occurredAt ?? Date.now(),
  };
  if (params.meta !== undefined) event.meta = params.meta;
  if (params.expectedVersion !== undefined) event.expected_version = params.expectedVersion;
  return event;
}

function defined(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) if (value !== undefined) out[key] = value;
  return out;
}

interface AppendAnswer {
  seq: number;
  event_id: string;
  version: number;
  duplicate: boolean;
}

function appended(answer: AppendAnswer): AppendResult {
  return {
    spooled: false,
    eventId: answer.event_id,
    seq: answer.seq,
    version: answer.version,
    duplicate: answer.duplicate,
  };
}

/** The `result` of a success line; rejects with the daemon's error otherwise. */
function check(line: ResponseLine): unknown {
  if (line.ok === true) return line.result;
  if (line.ok === false) throw errorFromWire(line.error);
  throw new Internal(`unexpected answer from the daemon: ${JSON.stringify(line).slice(0, 200)}`);
}

/** Whether an append that failed this way goes to the spool instead. */
function spoolable(error: unknown): boolean {
  return error instanceof DaemonUnreachable || error instanceof Unavailable;
}

export class AtlasdClient {
  readonly socketPath: string;
  /** Where offline appends go: `DATA_DIR/spool`. */
  readonly spoolDir: string;
  readonly spoolEnabled: boolean;
  readonly connectTimeoutMs: number;
  private readonly unrefWhenIdle: boolean;
  private conn: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private closed = false;

  constructor(options: ClientOptions = {}) {
    this.socketPath = resolveSocketPath(options.socket);
    this.spoolDir = spoolDirFor(resolveDataDir(options.dataDir, process.env, this.socketPath));
    this.spoolEnabled = options.spool ?? true;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.unrefWhenIdle = options.unrefWhenIdle ?? false;
  }

  /**
   * A client with its connection open. When no daemon answers, the client
   * is still returned (appends then go to the spool, and each later call
   * tries to connect again); `Forbidden` and other errors reject.
   */
  static async connect(options: ClientOptions = {}): Promise<AtlasdClient> {
    const client = new AtlasdClient(options);
    try {
      await client.connection();
    } catch (error) {
      if (!(error instanceof DaemonUnreachable)) throw error;
    }
    return client;
  }

  /** Whether the shared connection is open now. */
  get connected(): boolean {
    return this.conn !== null && this.conn.usable;
  }

  private connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(new DaemonUnreachable("the client is closed"));
    if (this.conn !== null && this.conn.usable) return Promise.resolve(this.conn);
    if (this.connecting === null) {
      this.connecting = Connection.open(this.socketPath, this.connectTimeoutMs, this.unrefWhenIdle)
        .then((conn) => {
          if (this.closed) {
            conn.close();
            throw new DaemonUnreachable("the client is closed");
          }
          this.conn = conn;
          return conn;
        })
        .finally(() => {
          this.connecting = null;
        });
    }
    return this.connecting;
  }

  /** Send one request and resolve with its `result`; sent once more if the connection drops. */
  async call(op: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const conn = await this.connection();
    let line: ResponseLine;
    try {
      line = await conn.request(op, params);
    } catch (error) {
      if (!(error instanceof DaemonUnreachable) || this.closed) throw error;
      // The daemon restarted or dropped the connection; a new one tells whether it is gone.
      line = await (await this.connection()).request(op, params);
    }
    return check(line);
  }

  async ping(): Promise<Pong> {
    return (await this.call("ping")) as Pong;
  }

  /** Append one event; spooled when no daemon answers (unless `expectedVersion` is set). */
  async append(params: AppendParams): Promise<AppendResult> {
    const event = wireEvent(params);
    try {
      return appended((await this.call("append", { ...event })) as AppendAnswer);
    } catch (error) {
      if (!spoolable(error)) throw error;
      return (await this.spool([event], error as AtlasdError))[0]!;
    }
  }

  /** Append every event or none; spooled as one file when no daemon answers. */
  async appendBatch(events: readonly AppendParams[]): Promise<AppendResult[]> {
    const prepared = events.map(wireEvent);
    try {
      const result = (await this.call("append_batch", { events: prepared })) as { results: AppendAnswer[] };
      return result.results.map(appended);
    } catch (error) {
      if (!spoolable(error)) throw error;
      return this.spool(prepared, error as AtlasdError);
    }
  }

  private async spool(events: WireEvent[], cause: AtlasdError): Promise<AppendResult[]> {
    if (!this.spoolEnabled) throw cause;
    if (events.some((e) => e.expected_version !== undefined && e.expected_version !== null)) {
      // An expected version cannot be checked offline: the caller must know it was not written.
      throw cause;
    }
    const file = await writeSpoolFile(this.spoolDir, events);
    return events.map((e) => ({
      spooled: true,
      eventId: e.event_id,
      seq: null,
      version: null,
      duplicate: false,
      spoolFile: file,
    }));
  }

  /** Events with a seq above `fromSeq`, oldest first. */
  async read(params: ReadParams = {}): Promise<ReadResult> {
    const result = (await this.call(
      "read",
      defined({ from_seq: params.fromSeq, stream: params.stream, types: params.types, limit: params.limit }),
    )) as { events: AtlasEvent[]; last_seq: number };
    return { events: result.events, lastSeq: result.last_seq };
  }

  /** One page of a view's rows; `next` continues it (null: the last page, or a daemon that does not page). */
  async query<R extends Row = Row>(view: string, params: QueryParams = {}): Promise<QueryPage & { rows: R[] }> {
    const result = (await this.call(
      "query",
      defined({
        view,
        filter: params.filter,
        limit: params.limit,
        order: params.order,
        order_by: params.orderBy,
        since: params.since,
        until: params.until,
        after: params.after,
      }),
    )) as { rows: R[]; next?: string | null };
    return { rows: result.rows, next: result.next ?? null };
  }

  /** Every matching row, following `next` from page to page. */
  async queryAll<R extends Row = Row>(view: string, params: QueryParams = {}): Promise<R[]> {
    const rows: R[] = [];
    let after = params.after;
    for (;;) {
      const page = await this.query<R>(view, { ...params, after });
      rows.push(...page.rows);
      if (page.next === null || page.rows.length === 0) return rows;
      after = page.next;
    }
  }

  /**
   * Events after `fromSeq` (`"end"`: only new ones), then live ones, until
   * closed: `for await (const event of client.subscribe({fromSeq}))`.
   * A subscriber that falls behind gets `SlowConsumer` and resumes from the
   * last seq it saw.
   */
  subscribe(params: SubscribeParams = {}): Subscription<AtlasEvent> {
    const request = defined({
      op: "subscribe",
      from_seq: params.fromSeq,
      stream: params.stream,
      types: params.types,
    });
    return new Subscription<AtlasEvent>(this.socketPath, this.connectTimeoutMs, request, params.signal);
  }

  /** The rows of a query now, then again each time they change. */
  watch<R extends Row = Row>(view: string, params: WatchParams = {}): Watch<R> {
    const request = defined({
      op: "watch",
      view,
      filter: params.filter,
      limit: params.limit,
      order: params.order,
    });
    return new Watch<R>(this.socketPath, this.connectTimeoutMs, request, params.signal);
  }

  async status(): Promise<Status> {
    return (await this.call("status")) as Status;
  }

  /** Start a sync round now; `wait` for its outcome, `retryRejected` requeues quarantined events first. */
  async syncNow(options: { wait?: boolean; retryRejected?: boolean } = {}): Promise<Record<string, unknown>> {
    return (await this.call(
      "sync_now",
      defined({ wait: options.wait, retry_rejected: options.retryRejected }),
    )) as Record<string, unknown>;
  }

  /** Close the shared connection; calls made after this reject. */
  close(): void {
    this.closed = true;
    const conn = this.conn;
    this.conn = null;
    conn?.close();
  }
}
