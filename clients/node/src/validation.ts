/**
 * The daemon's append-time checks, run by the client before it spools an
 * event, so that a spooled file is never rejected for what the socket would
 * have refused at once. Messages match the daemon's.
 *
 * - `stream`: 1..200 characters (code points), no control characters (C0, DEL, C1).
 * - `type`: 1..100 characters of `[A-Za-z0-9_.:-]`.
 * - `event_id`: a UUID in 8-4-4-4-12 hex form; `occurred_at`: an integer in
 *   0..2**53-1; `expected_version`: an integer >= 0.
 * - `data` (and `meta`): a plain object; field names of 1..1024 printable
 *   ASCII characters not starting with `$`; integers within +/-2**53; finite
 *   numbers; arrays of at most 8192 items; objects of at most 1024 fields;
 *   each at most 15 levels deep (the stored Convex document holds them one
 *   level down, within Convex's 16); only JSON values (no `undefined` in an
 *   array, no Date, Map, class instance, bigint, function).
 * - The stored event, encoded, at most 1 MiB.
 * - The data fields of pack event types (see `packs.ts`).
 *
 * JavaScript has one number type; the daemon's parser reads a number written
 * without a fraction or exponent as an integer. `JSON.stringify` writes every
 * integral number below 1e21 that way, so those are held to the integer range.
 */
import { InvalidValue } from "./errors.js";
import { isUuid } from "./ids.js";
import { checkPackFields } from "./packs.js";

export const MAX_EVENT_BYTES = 1 << 20;
export const MAX_VALUE_DEPTH = 15;
export const MAX_INT = 2 ** 53;
export const MAX_ARRAY_ITEMS = 8192;
export const MAX_OBJECT_FIELDS = 1024;
export const MAX_FIELD_NAME = 1024;
export const MAX_STREAM = 200;

const TYPE_RE = /^[A-Za-z0-9_.:-]{1,100}$/;
// C0 controls, DEL and C1 controls, as the daemon counts them
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const PRINTABLE_ASCII_RE = /^[\u0020-\u007e]+$/;
// JSON.stringify switches to exponent notation from here on; the daemon reads those as floats.
const EXPONENT_FROM = 1e21;

/** An event as a client hands it over (the fields of an `append`). */
export interface EventInput {
  stream: string;
  type: string;
  data: Record<string, unknown>;
  event_id?: string | null;
  meta?: Record<string, unknown> | null;
  expected_version?: number | null;
  occurred_at?: number | null;
}

function describe(value: unknown): string {
  if (value === null) return "None";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    return proto === null || proto === Object.prototype ? "dict" : (proto.constructor?.name ?? "object");
  }
  if (typeof value === "string") return "str";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (typeof value === "boolean") return "bool";
  return typeof value;
}

function repr(value: unknown, max: number): string {
  let text: string;
  try {
    text = typeof value === "string" ? `'${value}'` : String(JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > max ? text.slice(0, max) : text;
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

export function checkStream(stream: unknown): string {
  if (typeof stream !== "string") {
    throw new InvalidValue(`stream must be a string, got ${describe(stream)}`);
  }
  const length = codePoints(stream);
  if (length < 1 || length > MAX_STREAM) {
    throw new InvalidValue(`stream must be 1..${MAX_STREAM} characters, got ${length}`);
  }
  if (CONTROL_RE.test(stream)) {
    throw new InvalidValue("stream must not contain control characters");
  }
  return stream;
}

export function checkType(type: unknown): string {
  if (typeof type !== "string" || !TYPE_RE.test(type)) {
    throw new InvalidValue(
      `type must be 1..100 characters of [A-Za-z0-9_.:-], got ${repr(type, 120)}`,
    );
  }
  return type;
}

export function checkEventId(eventId: unknown): string {
  if (typeof eventId !== "string" || !isUuid(eventId)) {
    throw new InvalidValue(
      `event_id must be a UUID in 8-4-4-4-12 hex form, got ${repr(eventId, 60)}`,
    );
  }
  return eventId.toLowerCase();
}

export function checkOccurredAt(occurredAt: unknown): number | null {
  if (occurredAt === null || occurredAt === undefined) return null;
  if (typeof occurredAt !== "number" || !Number.isInteger(occurredAt) || occurredAt < 0 || occurredAt >= MAX_INT) {
    throw new InvalidValue(
      `occurred_at must be an integer in 0..2**53-1 (ms since the epoch), got ${repr(occurredAt, 40)}`,
    );
  }
  return occurredAt;
}

export function checkExpectedVersion(expected: unknown): number | null {
  if (expected === null || expected === undefined) return null;
  if (typeof expected !== "number" || !Number.isInteger(expected) || expected < 0) {
    throw new InvalidValue(`expected_version must be an integer >= 0, got ${repr(expected, 40)}`);
  }
  return expected;
}

/** Raised deep inside a value; each level adds its step to `path` on the way out. */
class Bad extends Error {
  readonly path: string[] = [];
}

function stepName(key: string): string {
  return "." + (codePoints(key) <= 64 ? key : [...key].slice(0, 61).join("") + "...");
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Check `data` or `meta` (named by `root`). */
export function checkValue(value: unknown, root: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || !isPlainObject(value)) {
    throw new InvalidValue(`${root} must be an object, got ${describe(value)}`);
  }
  try {
    walkObject(value, 1);
  } catch (error) {
    if (error instanceof Bad) {
      throw new InvalidValue(`${root}${error.path.reverse().join("")}: ${error.message}`);
    }
    throw error;
  }
  return value;
}

function checkKey(key: string): void {
  if (key.length === 0 || key.length > MAX_FIELD_NAME || !PRINTABLE_ASCII_RE.test(key)) {
    const bad = new Bad("field names must be 1..1024 printable ASCII characters");
    bad.path.push(key ? stepName(key) : ".''");
    throw bad;
  }
  if (key.startsWith("$")) {
    const bad = new Bad("field names must not start with '$'");
    bad.path.push(stepName(key));
    throw bad;
  }
}

function walkObject(obj: Record<string, unknown>, depth: number): void {
  if (depth > MAX_VALUE_DEPTH) throw new Bad(`nested deeper than ${MAX_VALUE_DEPTH} levels`);
  const keys = Object.keys(obj);
  if (keys.length > MAX_OBJECT_FIELDS) {
    throw new Bad(`object has ${keys.length} fields, more than ${MAX_OBJECT_FIELDS}`);
  }
  for (const key of keys) {
    const item = obj[key];
    // JSON.stringify leaves out a field whose value is undefined: it is absent.
    if (item === undefined) continue;
    checkKey(key);
    try {
      walkItem(item, depth);
    } catch (error) {
      if (error instanceof Bad) error.path.push(stepName(key));
      throw error;
    }
  }
}

function walkArray(items: unknown[], depth: number): void {
  if (depth > MAX_VALUE_DEPTH) throw new Bad(`nested deeper than ${MAX_VALUE_DEPTH} levels`);
  if (items.length > MAX_ARRAY_ITEMS) {
    throw new Bad(`array has ${items.length} items, more than ${MAX_ARRAY_ITEMS}`);
  }
  for (let index = 0; index < items.length; index++) {
    try {
      walkItem(items[index], depth);
    } catch (error) {
      if (error instanceof Bad) error.path.push(`[${index}]`);
      throw error;
    }
  }
}

/** Check one value found in a container at `depth`. */
function walkItem(item: unknown, depth: number): void {
  switch (typeof item) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(item)) throw new Bad(`${item} is not a finite number`);
      if (Number.isInteger(item) && Math.abs(item) > MAX_INT && Math.abs(item) < EXPONENT_FROM) {
        throw new Bad("integer outside -2**53..2**53");
      }
      return;
    case "object":
      if (item === null) return;
      if (Array.isArray(item)) return walkArray(item, depth + 1);
      if (isPlainObject(item)) return walkObject(item, depth + 1);
      throw new Bad(`${describe(item)} is not a JSON value`);
    default:
      throw new Bad(`${describe(item)} is not a JSON value`);
  }
}

// The stored event's fields other than the ones a client gives, at their widest:
// seq and version (up to 2**53: 16 digits), recorded_at, origin (a UUID), hash (hex SHA-256).
const WIDEST_SEQ = 2 ** 53 - 1;
const SAMPLE_UUID = "00000000-0000-7000-8000-000000000000";
const SAMPLE_HASH = "0".repeat(64);

/** The size of the event as the daemon stores it (an upper bound by a few bytes). */
export function storedSize(event: EventInput, eventId: string, occurredAt: number): number {
  const stored = {
    seq: WIDEST_SEQ,
    event_id: eventId,
    stream: event.stream,
    version: WIDEST_SEQ,
    type: event.type,
    data: event.data,
    meta: event.meta ?? {},
    recorded_at: occurredAt,
    occurred_at: occurredAt,
    origin: SAMPLE_UUID,
    hash: SAMPLE_HASH,
  };
  return Buffer.byteLength(JSON.stringify(stored), "utf8");
}

/**
 * Every check the daemon makes on one event, `where` prefixing messages
 * (`events[3].` in a batch). The event must carry its id and time already.
 */
export function checkEvent(event: EventInput, where = ""): void {
  try {
    checkStream(event.stream);
    checkType(event.type);
    checkValue(event.data, "data");
    if (event.meta !== null && event.meta !== undefined) checkValue(event.meta, "meta");
    const eventId = checkEventId(event.event_id);
    checkExpectedVersion(event.expected_version);
    const occurredAt = checkOccurredAt(event.occurred_at) ?? Date.now();
    checkPackFields(event.type, event.data);
    const size = storedSize(event, eventId, occurredAt);
    if (size > MAX_EVENT_BYTES) {
      throw new InvalidValue(`event is ${size} bytes encoded, more than ${MAX_EVENT_BYTES}`);
    }
  } catch (error) {
    if (error instanceof InvalidValue && where) {
      throw new InvalidValue(`${where}${error.message}`, { ...error.details });
    }
    throw error;
  }
}
