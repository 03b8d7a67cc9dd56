/**
 * The HTTP actions of the ingest endpoint (CONTRACT section 5).
 *
 * `POST /atlasd/ingest` checks the bearer token, reads at most the byte
 * limit of body, parses and checks the batch, sets aside events Convex
 * could not store (`rejected`), and hands the rest to one internal mutation.
 * `GET /atlasd/ingest/status?origin=` answers that origin's high water.
 *
 * Error handling: every refusal is a JSON body `{"error", "message"}`:
 * 401 bad or missing token, 503 no token configured on the deployment,
 * 400 malformed batch, 413 over the batch limits or too big for one
 * transaction (the sender splits it). Nothing is stored unless the answer
 * is 200; other failures of the mutation surface as Convex's 500.
 */
import { internal } from "./_generated/api";
import { httpAction } from "./_generated/server";
import { BadBatch, parseBatch, storageProblem, type Envelope } from "./lib/envelope";
import { batchLimits, type BatchLimits } from "./lib/limits";
import { bearerToken, tokensMatch } from "./lib/token";
import type { IngestResult, Rejection } from "./ingest";

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

export const postIngest = httpAction(async (ctx, request) => {
  const denied = await unauthorized(request);
  if (denied !== null) return denied;
  const limits = batchLimits(process.env);
  let batch;
  try {
    batch = parseBatch(await readBody(request, limits.maxBytes));
  } catch (error) {
    if (error instanceof BodyTooLarge) return tooLarge(limits, `body over ${limits.maxBytes} bytes; send fewer events per batch`);
    if (error instanceof BadBatch) return refuse(400, "bad_request", error.message);
    throw error;
  }
  if (batch.events.length > limits.maxEvents) {
    return tooLarge(limits, `${batch.events.length} events, over ${limits.maxEvents} per batch`);
  }
  const storable: Envelope[] = [];
  const refused = new Map<string, Rejection>();
  for (const event of batch.events) {
    const problem = storageProblem(event);
    if (problem === null) storable.push(event);
    else refused.set(event.event_id, { event_id: event.event_id, code: "invalid_value", message: problem });
  }
  let result: IngestResult;
  try {
    result = await ctx.runMutation(internal.ingest.apply, { origin: batch.origin, events: storable });
  } catch (error) {
    // A batch over the transaction limits fails the same way every time:
    // 413 makes the sender split it instead of retrying it as is.
    const message = error instanceof Error ? error.message : String(error);
    if (TRANSACTION_LIMIT.test(message)) {
      return tooLarge(limits, `the batch does not fit one Convex transaction; send fewer events (${message})`);
    }
    throw error;
  }
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
  const status = await ctx.runQuery(internal.ingest.status, { origin });
  return json(200, { origin: status.origin, high_water: status.high_water, events: status.events });
});
