/**
 * Event ids: UUIDv7 (RFC 9562), made by the client so that a retried or
 * spooled append can never be stored twice.
 *
 * A 48-bit ms timestamp, a 12-bit counter that keeps ids of one millisecond
 * increasing (method 1 of the RFC; it starts below 64 each millisecond and
 * borrows the next millisecond when spent), then 62 random bits.
 */
import { randomBytes } from "node:crypto";

let lastMs = 0;
let counter = 0;
// Random bytes are taken in blocks: one syscall per 512 ids instead of one per id.
const POOL_IDS = 512;
// 20 hex digits per id: 2 for the counter start, 1 for the variant, 15 random.
const ID_BYTES = 10;
let pool = Buffer.alloc(0);
let poolAt = 0;

function randomHex(): string {
  if (poolAt >= pool.length) {
    pool = randomBytes(ID_BYTES * POOL_IDS);
    poolAt = 0;
  }
  const hex = pool.toString("hex", poolAt, poolAt + ID_BYTES);
  poolAt += ID_BYTES;
  return hex;
}

const VARIANT = "89ab";

/** One new UUIDv7, greater than every id this process made before. */
export function newEventId(): string {
  const now = Date.now();
  const rand = randomHex();
  if (now > lastMs) {
    lastMs = now;
    counter = parseInt(rand.slice(0, 2), 16) & 0x3f;
  } else {
    counter += 1;
    if (counter > 0xfff) {
      lastMs += 1;
      counter = 0;
    }
  }
  const ms = lastMs.toString(16).padStart(12, "0");
  const variant = VARIANT[parseInt(rand[2] ?? "0", 16) & 0x3];
  return (
    `${ms.slice(0, 8)}-${ms.slice(8)}-7${counter.toString(16).padStart(3, "0")}-` +
    `${variant}${rand.slice(3, 6)}-${rand.slice(6, 18)}`
  );
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Whether `value` is a UUID in 8-4-4-4-12 hex form (the daemon lowercases it). */
export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}
