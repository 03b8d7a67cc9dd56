/** The typed shapes of what the daemon answers (field names as on the wire). */

/** A stored event. */
export interface AtlasEvent {
  seq: number;
  event_id: string;
  stream: string;
  version: number;
  type: string;
  data: Record<string, unknown>;
  meta: Record<string, unknown>;
  /** ms since the epoch: when this log stored the event. */
  recorded_at: number;
  /** ms since the epoch: when the thing happened (absent on events older than the field). */
  occurred_at?: number;
  origin: string;
  hash: string;
}

/** One row of a view. */
export type Row = Record<string, unknown>;

/** What to append: the fields of an `append` request, camelCased. */
export interface AppendParams {
  stream: string;
  type: string;
  data: Record<string, unknown>;
  /** A UUID; made by the client (a UUIDv7) when not given, so retries are safe. */
  eventId?: string;
  meta?: Record<string, unknown>;
  /** The stream's version must equal this (0: the stream must not exist yet). Never spooled. */
  expectedVersion?: number;
  /** ms since the epoch; the time of the call when not given. */
  occurredAt?: number;
}

/** An append the daemon took. */
export interface Appended {
  spooled: false;
  eventId: string;
  seq: number;
  version: number;
  /** The event was stored already (a retry): nothing new was appended. */
  duplicate: boolean;
}

/** An append written to the spool: the daemon appends it, once, when it next runs. */
export interface Spooled {
  spooled: true;
  eventId: string;
  seq: null;
  version: null;
  duplicate: false;
  /** The spool file holding it. */
  spoolFile: string;
}

export type AppendResult = Appended | Spooled;

export interface ReadParams {
  /** Events with a seq above this (default 0). */
  fromSeq?: number;
  stream?: string;
  types?: string[];
  limit?: number;
}

export interface ReadResult {
  events: AtlasEvent[];
  /** Read again with `fromSeq: lastSeq` to go on. */
  lastSeq: number;
}

export interface QueryParams {
  /** Equality on columns; `tags` means contains-all. */
  filter?: Record<string, unknown>;
  /** Page size (the daemon's default 1000, at most 10,000). */
  limit?: number;
  order?: "asc" | "desc";
  /** A column to sort by (daemons that page). */
  orderBy?: string;
  /** ms; rows whose `orderBy` time column is >= since (daemons that page). */
  since?: number;
  /** ms; rows whose `orderBy` time column is < until (daemons that page). */
  until?: number;
  /** The `next` cursor of a previous answer to the same query. */
  after?: string;
}

export interface QueryPage {
  rows: Row[];
  /** Pass as `after` for the next page; null when this page is the last. */
  next: string | null;
}

export interface SubscribeParams {
  /** Events after this seq, or `"end"` for only new ones (default 0: everything). */
  fromSeq?: number | "end";
  stream?: string;
  types?: string[];
  /** Aborting ends the iteration and closes the connection. */
  signal?: AbortSignal;
}

export interface WatchParams {
  filter?: Record<string, unknown>;
  limit?: number;
  order?: "asc" | "desc";
  signal?: AbortSignal;
}

export interface Pong {
  version: string;
  origin: string;
}

export interface SyncStatus {
  state: "disabled" | "idle" | "sending" | "backoff" | "auth_error" | string;
  acked_seq?: number | null;
  pending?: number | null;
  oldest_pending_ms?: number | null;
  rejected?: number | null;
  last_error?: unknown;
  next_attempt_ms?: number | null;
  [field: string]: unknown;
}

/** The `status` answer; every field the daemon sent is kept. */
export interface Status {
  origin: string;
  last_seq: number;
  events: number;
  streams: number;
  sync: SyncStatus;
  projections: unknown;
  db_bytes: number;
  uptime_s: number;
  [field: string]: unknown;
}
