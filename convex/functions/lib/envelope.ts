/**
 * Parsing and checking an ingest body (docs/eventlog.md, docs/sync.md).
 *
 * Two kinds of trouble, kept apart on purpose:
 * - a malformed body or envelope throws {@link BadBatch}: the whole POST is
 *   answered 400 and nothing is stored (the sender splits and retries);
 * - a well-formed event whose `data`/`meta` Convex cannot store is reported
 *   by {@link storageProblem}: only that event is rejected, the rest stored.
 *
 * Every rule is the daemon's (atlasd/events/validation.py), measured the
 * same way: string lengths in code points, sizes as Convex counts them
 * (`getDocumentSize`), so an event the daemon logged is never refused or
 * changed here, and what is refused here was refused there first.
 */
import { getDocumentSize } from "convex/values";
import {
  MAX_ARRAY_ITEMS,
  MAX_DOCUMENT_BYTES,
  MAX_DOCUMENT_DEPTH,
  MAX_FIELD_NAME,
  MAX_OBJECT_FIELDS,
  MAX_STREAM,
} from "./limits";

/** One event as the daemon sends it. */
export type Envelope = {
  seq: number;
  event_id: string;
  stream: string;
  version: number;
  type: string;
  data: Record<string, unknown>;
  meta: Record<string, unknown>;
  recorded_at: number;
  /** When the thing happened; absent on events logged before the field existed. */
  occurred_at?: number;
  origin: string;
  hash: string;
};

/**
 * An event as received: with `logged_origin` when it is sent under another
 * origin than the one it was logged (and hashed) under, after its log
 * changed origin. That field is for the hash check only, never stored.
 */
export type Received = Envelope & { logged_origin?: string };

/** The fields the event's hash was made with. */
export function hashedFields(event: Received): Envelope {
  const { logged_origin, ...envelope } = event;
  return logged_origin === undefined ? envelope : { ...envelope, origin: logged_origin };
}

/** The event as stored: without `logged_origin`. */
export function stored(event: Received): Envelope {
  const { logged_origin: _logged, ...envelope } = event;
  void _logged;
  return envelope;
}

export type Batch = { origin: string; events: Received[] };

/** A batch the endpoint refuses whole (HTTP 400); the message says where. */
export class BadBatch extends Error {
  override name = "BadBatch";
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TYPE = /^[A-Za-z0-9_.:-]{1,100}$/;
const HASH = /^[0-9a-f]{64}$/;
// C0, DEL and C1, as the daemon checks streams.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCount(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}

/** Length in code points, as Python's `len` counts (not UTF-16 units). */
export function codePoints(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** A lone surrogate has no UTF-8 form: stored, it would silently become U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function text(value: unknown, max: number): value is string {
  if (typeof value !== "string" || value.length < 1 || CONTROL.test(value) || LONE_SURROGATE.test(value)) return false;
  return codePoints(value) <= max;
}

function envelope(raw: unknown, at: string, origin: string): Received {
  if (!isPlainObject(raw)) throw new BadBatch(`${at}: must be an object`);
  const fail = (field: string, what: string): never => {
    throw new BadBatch(`${at}.${field}: ${field in raw ? "must be" : "missing, must be"} ${what}`);
  };
  const { seq, event_id, stream, version, type, data, meta, recorded_at, occurred_at, hash, logged_origin } = raw;
  if (!isCount(seq, 1)) fail("seq", "a positive integer");
  if (typeof event_id !== "string" || !UUID.test(event_id)) fail("event_id", "a lowercase UUID");
  if (!text(stream, MAX_STREAM)) fail("stream", `a string of 1..${MAX_STREAM} characters without control characters`);
  if (!isCount(version, 1)) fail("version", "a positive integer");
  if (typeof type !== "string" || !TYPE.test(type)) fail("type", "1..100 characters of [A-Za-z0-9_.:-]");
  if (!isPlainObject(data)) fail("data", "an object");
  if (!isPlainObject(meta)) fail("meta", "an object");
  if (!isCount(recorded_at, 0)) fail("recorded_at", "a non-negative integer (ms since the epoch)");
  if (occurred_at !== undefined && !isCount(occurred_at, 0)) {
    fail("occurred_at", "a non-negative integer below 2^53 (ms since the epoch)");
  }
  if (raw.origin !== origin) fail("origin", `the body's origin ${JSON.stringify(origin)}`);
  if (typeof hash !== "string" || !HASH.test(hash)) fail("hash", "64 lowercase hex digits");
  if (logged_origin !== undefined && !text(logged_origin, MAX_STREAM)) {
    fail("logged_origin", `absent or a string of 1..${MAX_STREAM} characters without control characters`);
  }
  // Only the contract's fields are kept: a field a newer daemon adds is not stored.
  return {
    seq: seq as number,
    event_id: event_id as string,
    stream: stream as string,
    version: version as number,
    type: type as string,
    data: data as Record<string, unknown>,
    meta: meta as Record<string, unknown>,
    recorded_at: recorded_at as number,
    ...(occurred_at === undefined ? {} : { occurred_at: occurred_at as number }),
    origin,
    hash: hash as string,
    ...(logged_origin === undefined ? {} : { logged_origin: logged_origin as string }),
  };
}

/**
 * The batch in `text`, checked: a JSON object with `origin` and `events` in
 * strictly increasing `seq`, each a complete envelope of that origin, no
 * `event_id` twice. Throws {@link BadBatch} otherwise.
 */
export function parseBatch(body: string): Batch {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new BadBatch("body: not valid JSON");
  }
  if (!isPlainObject(parsed)) throw new BadBatch("body: must be a JSON object");
  const { origin, events } = parsed;
  if (!text(origin, MAX_STREAM)) {
    throw new BadBatch(`origin: must be a string of 1..${MAX_STREAM} characters without control characters`);
  }
  if (!Array.isArray(events)) throw new BadBatch("events: must be a list");
  const out: Received[] = [];
  const ids = new Set<string>();
  for (const [i, raw] of events.entries()) {
    const event = envelope(raw, `events[${i}]`, origin);
    const previous = out[out.length - 1];
    if (previous !== undefined && event.seq <= previous.seq) {
      throw new BadBatch(`events[${i}].seq: ${event.seq} is not above ${previous.seq}; send events in seq order`);
    }
    if (ids.has(event.event_id)) {
      throw new BadBatch(`events[${i}].event_id: ${event.event_id} appears twice in the batch`);
    }
    ids.add(event.event_id);
    out.push(event);
  }
  return { origin, events: out };
}

function fieldName(name: string): string | null {
  if (name.length < 1 || name.length > MAX_FIELD_NAME) return `field names need 1..${MAX_FIELD_NAME} characters`;
  if (!/^[\x20-\x7e]+$/.test(name)) return "field names must be printable ASCII";
  if (name.startsWith("$")) return "field names must not start with '$'";
  // JavaScript drops it when a value is copied by assignment (as Convex does).
  if (name === "__proto__") return "'__proto__' is not a storable field name";
  return null;
}

// Paths read like the daemon's messages: data.steps[3].$ref
function key(path: string, name: string): string {
  return `${path}.${name}`;
}

/** The first reason `value` (at `depth` in the document) cannot be stored, or null. */
function valueProblem(value: unknown, path: string, depth: number): string | null {
  if (value === null || typeof value === "boolean") return null;
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? `${path}: lone UTF-16 surrogate` : null;
  if (typeof value === "number") {
    // JSON cannot tell 1e300 from an integer, so the +/-2^53 rule for
    // integers is the daemon's to check; here every finite number is a float64.
    return Number.isFinite(value) ? null : `${path}: numbers must be finite`;
  }
  if (typeof value !== "object") return `${path}: not a JSON value`;
  if (depth > MAX_DOCUMENT_DEPTH) return `${path}: nested deeper than ${MAX_DOCUMENT_DEPTH} levels`;
  if (Array.isArray(value)) {
    if (value.length > MAX_ARRAY_ITEMS) return `${path}: arrays hold at most ${MAX_ARRAY_ITEMS} items`;
    for (const [i, item] of value.entries()) {
      const problem = valueProblem(item, `${path}[${i}]`, depth + 1);
      if (problem !== null) return problem;
    }
    return null;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_OBJECT_FIELDS) return `${path}: objects hold at most ${MAX_OBJECT_FIELDS} fields`;
  for (const [name, item] of entries) {
    const bad = fieldName(name);
    if (bad !== null) return `${key(path, name)}: ${bad}`;
    const problem = valueProblem(item, key(path, name), depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * Why Convex could not store this event, or null when it can.
 *
 * The stored event document is level 1, so `data` and `meta` are level 2.
 * The daemon checks the same rules before it appends; this is the remote's
 * own line of defence. The size is the stored document's as Convex counts
 * it (system fields included), checked after the values so that it only
 * ever walks plain JSON.
 */
export function storageProblem(event: Envelope): string | null {
  const problem = valueProblem(event.data, "data", 2) ?? valueProblem(event.meta, "meta", 2);
  if (problem !== null) return problem;
  const size = getDocumentSize(event as never);
  if (size > MAX_DOCUMENT_BYTES) return `event: ${size} bytes as Convex counts a document, over ${MAX_DOCUMENT_BYTES}`;
  return null;
}
