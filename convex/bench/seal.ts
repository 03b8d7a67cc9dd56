/** Chained hashes for benchmark envelopes, as the daemon computes them (the endpoint checks them). */
import { createHash } from "node:crypto";
import { eventContent, GENESIS_HASH } from "../functions/lib/canonical";
import type { Envelope } from "../functions/lib/envelope";

/** The last hash built for each `origin:seq`. */
const built = new Map<string, string>();

/**
 * `event` with its hash chained onto the last envelope built for the seq
 * before it (genesis for seq 1; anything else the remote cannot check).
 */
export function sealed(event: Omit<Envelope, "hash">): Envelope {
  const prev = event.seq === 1 ? GENESIS_HASH : (built.get(`${event.origin}:${event.seq - 1}`) ?? GENESIS_HASH);
  const hash = createHash("sha256").update(`${prev}\n${eventContent(event)}`).digest("hex");
  built.set(`${event.origin}:${event.seq}`, hash);
  return { ...event, hash };
}
