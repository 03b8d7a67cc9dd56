/**
 * The HTTP actions of the ingest endpoint (docs/sync.md).
 *
 * `POST /atlasd/ingest` checks the bearer token, reads at most the byte
 * limit of body, parses and checks the batch, sets aside events Convex
 * could not store (`rejected`), and hands the rest to one internal mutation.
 * `GET /atlasd/ingest/status?origin=` answers that origin's high water.
 *
 * Each event is checked before the mutation runs: storable by Convex (values,
 * size as `getDocumentSize` counts it) and carrying the hash the daemon's
 * chain gives it, recomputed here (lib/canonical.ts) from the previous
 * event's hash of the same origin: the one before it in the batch, else the
 * one stored (an event whose predecessor the remote does not hold cannot be
 * checked and is taken as sent). A failing event is rejected alone.
 *
 * `X-Atlasd-Origin-Key`, when sent, binds the origin on first contact; from
 * then on the origin's calls need the same key (403 `origin_key`).
 *
 * Error handling: every refusal is a JSON body `{"error", "message"}`:
 * 401 bad or missing token, 403 wrong origin key, 503 no token configured on
 * the deployment, 400 malformed batch, 413 over the batch limits, over
 * Convex's argument size or too big for one transaction (the sender splits
 * it). A mutation failure Convex ties to a value (a document it cannot
 * store) is a 400 naming the event when the batch holds one, so the sender
 * splits down to it and quarantines it. Nothing is stored unless the answer
 * is 200; only failures of the backend itself surface as Convex's 500.
 */
import { getConvexSize } from "convex/values";
import { internal } from "./_generated/api";
import { httpAction } from "./_generated/server";
import { eventHash, GENESIS_HASH, rawEvents, rawTextHashMatches, sha256Hex } from "./lib/canonical";
import { BadBatch, hashedFields, parseBatch, storageProblem, stored, type Envelope, type Received } from "./lib/envelope";
import { batchLimits, MAX_ARGUMENTS_BYTES, type BatchLimits } from "./lib/limits";
import { bearerToken, tokensMatch } from "./lib/token";
import type { IngestResult, Rejection } from "./ingest";

/** The header carrying the origin key. */
const ORIGIN_KEY_HEADER = "X-Atlasd-Origin-Key";
/** Messages of Convex failures tied to a stored value, not to the backend. */
const VALUE_FAILURE =
  /Value does not match validator|Validator error|Failed to insert or update a document|too large|nested|Field name|Invalid (argument|value)|is not a supported Convex type/i;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers },
  });
}

function refuse(status: number, error: string, message: string, extra: Record<string, unknown> = {}): Response {
  const headers: Record<string, string> = status === 401 ? { "WWW-Authenticate": 'Bearer realm="atlasd"' } : {};
  return json(status, { error, message, ...extra }, headers);
}

/** A refusal when the request does not carry the deployment's token, else null. */
async function unauthorized(request: Request): Promise<Response | null> {
  const expected = process.env.ATLASD_INGEST_TOKEN;
  if (expected === undefined || expected === "") {
    return refuse(503, "not_configured", "ATLASD_INGEST_TOKEN is not set on this deployment; nothing is accepted");
  }
  const given = bearerToken(request.headers.get("Authorization"));
  if (given === null) return refuse(401, "unauthorized", "missing bearer token");
  if (!(await tokensMatch(given, expected))) return refuse(401, "unauthorized", "wrong token");
  return null;
}

class BodyTooLarge extends Error {}

/** Convex's messages for a transaction over its limits ("... in a single function execution (limit: N)"). */
const TRANSACTION_LIMIT = /in a single function execution/i;

/** The body as text, read no further than `maxBytes`. */
async function readBody(request: Request, maxBytes: number): Promise<string> {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > maxBytes) throw new BodyTooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body !== null) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw new BodyTooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new BadBatch("body: not valid UTF-8");
  }
}

function tooLarge(limits: BatchLimits, message: string): Response {
  return refuse(413, "too_large", message, { max_events: limits.maxEvents, max_bytes: limits.maxBytes });
}

/** Digest of the request's origin key, or undefined when it carries none. */
async function keyHash(request: Request): Promise<string | undefined> {
  const key = request.headers.get(ORIGIN_KEY_HEADER);
  return key === null || key === "" ? undefined : sha256Hex(key);
}

function wrongKey(origin: string): Response {
  return refuse(
    403,
    "origin_key",
    `origin ${JSON.stringify(origin)} is bound to another origin key; re-key it on the deployment if this machine was restored without its key`,
  );
}

/**
 * The events of `events` whose hash differs from the chain's, as rejections.
 * The previous hash comes from the batch when the seq before is in it, else
 * from the remote's store (genesis for seq 1); without either the event is
 * not checked. An event logged before integral floats were stored as
 * integers passes when its hash is that of its own text as sent (`raw`).
 */
async function chainProblems(
  lookup: (seqs: number[]) => Promise<Array<string | null>>,
  events: readonly Received[],
  raw: () => Map<string, string>,
): Promise<Rejection[]> {
  const inBatch = new Map(events.map((e) => [e.seq, e.hash]));
  const outside = [...new Set(events.map((e) => e.seq - 1).filter((s) => s >= 1 && !inBatch.has(s)))];
  const stored = new Map<number, string | null>();
  if (outside.length > 0) {
    const hashes = await lookup(outside);
    outside.forEach((seq, i) => stored.set(seq, hashes[i] ?? null));
  }
  const problems: Rejection[] = [];
  for (const event of events) {
    const prev = event.seq === 1 ? GENESIS_HASH : (inBatch.get(event.seq - 1) ?? stored.get(event.seq - 1) ?? null);
    if (prev === null) continue;
    const expected = await eventHash(prev, hashedFields(event));
    if (expected !== event.hash && !(await rawTextHashMatches(prev, raw().get(event.event_id) ?? ""))) {
      problems.push({
        event_id: event.event_id,
        code: "hash_mismatch",
        message: `hash ${event.hash} is not the chain's ${expected}: the event differs from the one its log holds`,
      });
    }
  }
  return problems;
}

export const postIngest = httpAction(async (ctx, request) => {
  const denied = await unauthorized(request);
  if (denied !== null) return denied;
  const limits = batchLimits(process.env);
  let batch;
  let body = "";
  try {
    body = await readBody(request, limits.maxBytes);
    batch = parseBatch(body);
  } catch (error) {
    if (error instanceof BodyTooLarge) return tooLarge(limits, `body over ${limits.maxBytes} bytes; send fewer events per batch`);
    if (error instanceof BadBatch) return refuse(400, "bad_request", error.message);
    throw error;
  }
  if (batch.events.length > limits.maxEvents) {
    return tooLarge(limits, `${batch.events.length} events, over ${limits.maxEvents} per batch`);
  }
  const key_hash = await keyHash(request);
  const refused = new Map<string, Rejection>();
  const checkable: Received[] = [];
  for (const event of batch.events) {
    const problem = storageProblem(stored(event));
    if (problem === null) checkable.push(event);
    else refused.set(event.event_id, { event_id: event.event_id, code: "invalid_value", message: problem });
  }
  const lookup = (seqs: number[]) => ctx.runQuery(internal.ingest.storedHashes, { origin: batch.origin, seqs });
  // Each event's text as sent, found only if some hash differs (event_id -> text).
  let texts: Map<string, string> | null = null;
  const raw = (): Map<string, string> => {
    if (texts === null) {
      const items = rawEvents(body) ?? [];
      const ids = batch.events.map((e) => e.event_id);
      texts = new Map(items.length === ids.length ? ids.map((id, i) => [id, items[i] ?? ""]) : []);
    }
    return texts;
  };
  for (const r of await chainProblems(lookup, checkable, raw)) refused.set(r.event_id, r);
  const storable: Envelope[] = checkable.filter((e) => !refused.has(e.event_id)).map(stored);
  const args = { origin: batch.origin, events: storable, ...(key_hash === undefined ? {} : { key_hash }) };
  const argsSize = getConvexSize(args as never);
  if (argsSize > MAX_ARGUMENTS_BYTES) {
    return tooLarge(limits, `the batch is ${argsSize} bytes as Convex counts arguments, over ${MAX_ARGUMENTS_BYTES}`);
  }
  let outcome;
  try {
    outcome = await ctx.runMutation(internal.ingest.apply, args);
  } catch (error) {
    // A batch over the transaction limits fails the same way every time:
    // 413 makes the sender split it instead of retrying it as is.
    const message = error instanceof Error ? error.message : String(error);
    if (TRANSACTION_LIMIT.test(message)) {
      return tooLarge(limits, `the batch does not fit one Convex transaction; send fewer events (${message})`);
    }
    if (VALUE_FAILURE.test(message)) {
      // Tied to a value: the sender splits until the event is alone, then quarantines it.
      const only = storable.length === 1 ? storable[0] : undefined;
      const named = only === undefined ? {} : { event_id: only.event_id };
      const where = only === undefined ? `one of ${storable.length} events` : `event ${only.event_id}`;
      return refuse(400, "unstorable", `Convex refused to store ${where}: ${message.slice(0, 500)}`, named);
    }
    throw error;
  }
  if ("refused" in outcome) return wrongKey(batch.origin);
  const result: IngestResult = outcome;
  // Rejections in the batch's order, whichever step refused them.
  for (const r of result.rejected) refused.set(r.event_id, r);
  const rejected = batch.events.flatMap((e) => {
    const r = refused.get(e.event_id);
    return r === undefined ? [] : [r];
  });
  return json(200, { accepted: result.accepted, duplicates: result.duplicates, rejected, high_water: result.high_water });
});

export const getStatus = httpAction(async (ctx, request) => {
  const denied = await unauthorized(request);
  if (denied !== null) return denied;
  const origin = new URL(request.url).searchParams.get("origin");
  if (origin === null || origin === "") return refuse(400, "bad_request", "origin: missing query parameter");
  const key_hash = await keyHash(request);
  const status = await ctx.runQuery(internal.ingest.status, { origin, ...(key_hash === undefined ? {} : { key_hash }) });
  if (!status.allowed) return wrongKey(origin);
  return json(200, { origin: status.origin, high_water: status.high_water, events: status.events });
});
