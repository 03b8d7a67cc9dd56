/**
 * The daemon's canonical event encoding and hash chain, recomputed on the remote.
 *
 * An event's content is its JSON without `hash`, fields in this order:
 * seq, event_id, stream, version, type, data, meta, recorded_at,
 * occurred_at (only when the event carries it), origin; no whitespace; the
 * keys of every object inside `data` and `meta` sorted; strings escaped only
 * where JSON requires (as `JSON.stringify` does); numbers as below. Then
 * `hash = hex(sha256(prev_hash + "\n" + content))`, `prev_hash` being the
 * previous event's hash of the same origin (64 "0" for seq 1).
 *
 * Numbers: the daemon stores every integral number within +/-2^53 as an
 * integer (`1.0` is logged as `1`), so a number's text depends on its value
 * alone and JavaScript, which has one number type, writes the same text:
 * - integral and within +/-2^53: decimal digits;
 * - otherwise the shortest round-trip digits, in positional notation with at
 *   least one digit after the point when the decimal exponent is in -5..15
 *   (`0.00001`, `1500000000000000.5`), else as `d[.ddd]e[-]x` (`1e16`, `1e-7`).
 *
 * Field names are printable ASCII (checked before), so sorting by UTF-16
 * units and by code points agree.
 */

export const GENESIS_HASH = "0".repeat(64);
const MAX_SAFE = 2 ** 53;

/** A finite number's canonical text. */
export function numberText(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) <= MAX_SAFE) return Object.is(x, -0) ? "0" : x.toFixed(0);
  // toExponential() with no argument gives the shortest round-trip digits.
  const [mantissa, expText] = x.toExponential().split("e") as [string, string];
  const exp = Number(expText);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  const sign = negative ? "-" : "";
  if (exp < -5 || exp >= 16) {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : "";
    return `${sign}${digits[0]}${rest}e${exp}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
  const fraction = digits.slice(exp + 1);
  return `${sign}${whole}.${fraction === "" ? "0" : fraction}`;
}

/** `value` (a JSON value) in canonical text: sorted keys, canonical numbers. */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new Error("numbers must be finite");
      return numberText(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
    }
    default:
      throw new Error(`${typeof value} is not a JSON value`);
  }
}

/** The event fields the hash covers. */
export type HashedFields = {
  seq: number;
  event_id: string;
  stream: string;
  version: number;
  type: string;
  data: Record<string, unknown>;
  meta: Record<string, unknown>;
  recorded_at: number;
  occurred_at?: number;
  origin: string;
};

/** The event's content: its canonical JSON without `hash`. */
export function eventContent(e: HashedFields): string {
  const parts = [
    `"seq":${numberText(e.seq)}`,
    `"event_id":${JSON.stringify(e.event_id)}`,
    `"stream":${JSON.stringify(e.stream)}`,
    `"version":${numberText(e.version)}`,
    `"type":${JSON.stringify(e.type)}`,
    `"data":${canonicalJson(e.data)}`,
    `"meta":${canonicalJson(e.meta)}`,
    `"recorded_at":${numberText(e.recorded_at)}`,
  ];
  if (e.occurred_at !== undefined) parts.push(`"occurred_at":${numberText(e.occurred_at)}`);
  parts.push(`"origin":${JSON.stringify(e.origin)}`);
  return `{${parts.join(",")}}`;
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The hash `event` must carry after `prevHash`. */
export async function eventHash(prevHash: string, event: HashedFields): Promise<string> {
  const bytes = new TextEncoder().encode(`${prevHash}\n${eventContent(event)}`);
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/** Hex SHA-256 of a text (the origin key is recorded only as this). */
export async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * The JSON text of each item of the body's top-level `events` array, or null
 * when the body is not laid out so (only called on well-formed JSON). A
 * string-aware scan, no second parse.
 */
export function rawEvents(body: string): string[] | null {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let key: string | null = null;
  let stringStart = -1;
  let lastString = "";
  let arrayAt = -1;
  let itemStart = -1;
  const items: string[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') {
        inString = false;
        lastString = body.slice(stringStart + 1, i);
      }
      continue;
    }
    if (c === '"') {
      inString = true;
      stringStart = i;
      if (arrayAt >= 0 && depth === 2 && itemStart < 0) itemStart = i;
    } else if (c === ":" && depth === 1) {
      key = lastString;
    } else if (c === "{" || c === "[") {
      if (depth === 1 && c === "[" && key === "events" && arrayAt < 0) arrayAt = i;
      else if (arrayAt >= 0 && depth === 2 && itemStart < 0) itemStart = i;
      depth++;
    } else if (c === "}" || c === "]") {
      depth--;
      if (arrayAt >= 0 && depth === 1) {
        if (itemStart >= 0) items.push(body.slice(itemStart, i).trim());
        return items;
      }
    } else if (c === "," && arrayAt >= 0 && depth === 2) {
      if (itemStart >= 0) items.push(body.slice(itemStart, i).trim());
      itemStart = -1;
    } else if (arrayAt >= 0 && depth === 2 && itemStart < 0 && !/\s/.test(c ?? "")) {
      itemStart = i;
    }
  }
  return null;
}

/** The hash field as the daemon writes it, last in its stored event. */
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/**
 * Whether `raw` (an event's JSON text exactly as sent) carries the hash of
 * its own text after `prevHash`: for events logged before the number rule,
 * whose text holds integral floats (`1.0`) that no value-based encoding can
 * reproduce. Only the daemon's layout (`hash` last) is recognised.
 */
export async function rawTextHashMatches(prevHash: string, raw: string): Promise<boolean> {
  const match = HASH_SUFFIX.exec(raw);
  if (match === null) return false;
  const content = `${raw.slice(0, raw.length - match[0].length)}}`;
  const bytes = new TextEncoder().encode(`${prevHash}\n${content}`);
  return hex(await crypto.subtle.digest("SHA-256", bytes)) === match[1];
}
