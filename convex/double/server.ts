/**
 * The Convex double: the real functions in `functions/` run by convex-test
 * behind a real HTTP server, for tests and demos on machines that cannot
 * reach Convex. TEST-ONLY: it answers internal functions over `/api/*` and
 * wipes everything on `POST /_test/reset`, which no deployment would do.
 *
 *   node --import tsx double/server.ts [--port N] [--host H] [--watch-stdin]
 *
 * Serves
 * - every route of `functions/http.ts` (`POST /atlasd/ingest`, `GET /atlasd/ingest/status`);
 * - `POST /api/query`, `/api/mutation`, `/api/action` in Convex's wire format:
 *   `{"path": "module:function", "args": {...}, "format": "json"}` ->
 *   `{"status": "success", "value": ...}` or
 *   `{"status": "error", "errorMessage": ..., "errorData": ...}` (HTTP 200);
 *   public and internal functions alike; `Authorization: Bearer JWT` runs
 *   them as the identity of the JWT's `iss` and `sub` (decoded, not verified);
 * - `POST /_test/reset`: a fresh, empty database.
 *
 * Prints exactly one line on stdout once listening: `READY http://HOST:PORT`
 * (`--port 0`, the default, picks a free port). The ingest token is the
 * environment's `ATLASD_INGEST_TOKEN`, as on a deployment.
 *
 * Resource handling: one process, no workers. SIGTERM/SIGINT close the
 * listener and every connection and exit 0; with `--watch-stdin` the double
 * also exits when its stdin closes, so it never outlives the process that
 * started it (even one killed with SIGKILL).
 */
import { register } from "node:module";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { makeFunctionReference } from "convex/server";
import { convexToJson, jsonToConvex, ConvexError, type Value } from "convex/values";
import schema from "../functions/schema";
import { installFastPath } from "./fastpath";
import { functionModules } from "./modules";

type Kind = "query" | "mutation" | "action";

// convex-test is loaded after the hook that exposes its database class, so
// indexed lookups can take the fast path (double/fastpath.ts).
register("./expose-hook.mjs", import.meta.url);
const { convexTest, __DatabaseFake } = (await import("convex-test")) as typeof import("convex-test") & {
  __DatabaseFake: Parameters<typeof installFastPath>[0];
};
installFastPath(__DatabaseFake, process.env.ATLASD_DOUBLE_VERIFY === "1");

const modules = functionModules();
const fresh = () => convexTest({ schema, modules, transactionLimits: true });
let backend = fresh();

/** Largest request body the double reads (Convex's HTTP action limit is 20 MiB). */
const MAX_BODY = 20 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new BodyTooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

type Identity = { issuer: string; subject: string; tokenIdentifier: string };

/**
 * The signed-in identity of `Authorization: Bearer JWT` (null without the
 * header), as Convex derives it from the token's `iss` and `sub`. TEST-ONLY:
 * the JWT is decoded, never verified; a deployment checks its signature
 * against the providers of its auth config.
 */
function identityOf(header: string | undefined): Identity | null {
  if (header === undefined) return null;
  const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  const payload = token?.split(".")[1];
  if (payload === undefined) throw new BadAuth("Authorization: expected Bearer and a JWT");
  let claims: { iss?: unknown; sub?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims;
  } catch {
    throw new BadAuth("Authorization: the JWT payload is not JSON");
  }
  if (typeof claims?.iss !== "string" || typeof claims.sub !== "string") {
    throw new BadAuth("Authorization: the JWT needs string iss and sub claims");
  }
  return { issuer: claims.iss, subject: claims.sub, tokenIdentifier: `${claims.iss}|${claims.sub}` };
}

class BadAuth extends Error {}

/** One `/api/{query,mutation,action}` call in Convex's wire format, as the caller `authorization` names. */
async function callFunction(kind: Kind, raw: Buffer, res: ServerResponse, authorization?: string): Promise<void> {
  let identity: Identity | null;
  try {
    identity = identityOf(authorization);
  } catch (error) {
    return send(res, 401, { code: "Unauthenticated", message: (error as Error).message });
  }
  let request: { path?: unknown; args?: unknown };
  try {
    request = JSON.parse(raw.toString("utf8")) as typeof request;
  } catch {
    return send(res, 400, { code: "BadJsonBody", message: "request body is not JSON" });
  }
  const { path, args } = request ?? {};
  if (typeof path !== "string" || !/^[\w/.-]+(:\w+)?$/.test(path)) {
    return send(res, 400, { code: "BadConvexFunctionPath", message: `bad function path ${JSON.stringify(path)}` });
  }
  const argsValue = args === undefined ? {} : args;
  if (typeof argsValue !== "object" || argsValue === null || Array.isArray(argsValue)) {
    return send(res, 400, { code: "BadArgs", message: "args must be an object" });
  }
  try {
    const decoded = jsonToConvex(argsValue as never) as Record<string, Value>;
    // The wire names functions by path; convex-test takes references of any visibility.
    const caller = identity === null ? backend : backend.withIdentity(identity);
    const call = caller[kind] as unknown as (ref: unknown, args: Record<string, Value>) => Promise<unknown>;
    const value = await call(makeFunctionReference(path.replace(/\.(ts|js)(?=:|$)/, "")), decoded);
    return send(res, 200, { status: "success", value: convexToJson((value ?? null) as Value) });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const errorData = error instanceof ConvexError ? convexToJson(error.data as Value) : undefined;
    return send(res, 200, { status: "error", errorMessage: message, ...(errorData === undefined ? {} : { errorData }) });
  }
}

/** Any other path: the deployment's HTTP router, as on `https://NAME.convex.site`. */
async function callHttp(req: IncomingMessage, raw: Buffer, res: ServerResponse): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === "host" || name === "connection" || name === "transfer-encoding") continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const response = await backend.fetch(req.url ?? "/", {
    method: req.method,
    headers,
    body: hasBody ? new Uint8Array(raw) : undefined,
  });
  const body = Buffer.from(await response.arrayBuffer());
  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "transfer-encoding") out[name] = value;
  });
  out["content-length"] = String(body.length);
  res.writeHead(response.status, out);
  res.end(body);
}

class BodyTooLarge extends Error {}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://double").pathname;
  let raw: Buffer;
  try {
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY) throw new BodyTooLarge();
    raw = await readBody(req);
  } catch (error) {
    if (!(error instanceof BodyTooLarge)) throw error;
    res.setHeader("Connection", "close");
    return send(res, 413, { code: "PayloadTooLarge", message: "request body over 20 MiB" });
  }
  const api = /^\/api\/(query|mutation|action)$/.exec(path);
  if (api !== null) {
    if (req.method !== "POST") return send(res, 405, { code: "MethodNotAllowed", message: "use POST" });
    return callFunction(api[1] as Kind, raw, res, req.headers.authorization);
  }
  if (path === "/_test/reset") {
    if (req.method !== "POST") return send(res, 405, { code: "MethodNotAllowed", message: "use POST" });
    backend = fresh();
    return send(res, 200, { reset: true });
  }
  return callHttp(req, raw, res);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      "watch-stdin": { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`convex double: bad --port ${values.port}\n`);
    process.exit(2);
  }
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      process.stderr.write(`convex double: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      if (!res.headersSent) send(res, 500, { code: "InternalServerError", message: String(error) });
      else res.destroy();
    });
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
    // Exit even if a handler is stuck; nothing here needs flushing.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (values["watch-stdin"]) {
    process.stdin.on("end", stop);
    process.stdin.on("close", stop);
    process.stdin.resume();
  }
  server.listen(port, values.host, () => {
    const { address, port: bound } = server.address() as AddressInfo;
    process.stdout.write(`READY http://${address}:${bound}\n`);
  });
}

main();
