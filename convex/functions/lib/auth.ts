/**
 * Who may read: the check every public query runs before touching a table.
 *
 * A read is allowed when
 * - the caller passes `token` equal to the deployment's `ATLASD_READ_TOKEN`
 *   (compared in constant time, as the ingest token), or
 * - the caller is signed in through Convex auth and its identity's
 *   `tokenIdentifier` (`issuer|subject`) or `issuer` is one of the
 *   comma-separated entries of `ATLASD_READ_IDENTITIES`.
 *
 * Anything else throws `ConvexError({code: "unauthorized", message})`. With
 * neither variable set every read is refused. The read token is a separate
 * secret from the ingest token: a read token equal to `ATLASD_INGEST_TOKEN`
 * is treated as unset, so a dashboard can never be handed the write secret.
 */
import { ConvexError } from "convex/values";
import type { UserIdentity } from "convex/server";
import { tokensMatch } from "./token";

export type Unauthorized = { code: "unauthorized"; message: string };

/** What a read check needs of a query context. */
export type AuthCtx = { auth: { getUserIdentity(): Promise<UserIdentity | null> } };

type Env = Record<string, string | undefined>;

function refuse(message: string): never {
  throw new ConvexError<Unauthorized>({ code: "unauthorized", message });
}

/** The entries of `ATLASD_READ_IDENTITIES`, trimmed, empty ones dropped. */
export function readIdentities(env: Env): string[] {
  return (env.ATLASD_READ_IDENTITIES ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

/** The read token, or null when unset, empty, or equal to the ingest token. */
async function readToken(env: Env): Promise<string | null> {
  const token = env.ATLASD_READ_TOKEN;
  if (token === undefined || token === "") return null;
  const ingest = env.ATLASD_INGEST_TOKEN;
  if (ingest !== undefined && ingest !== "" && (await tokensMatch(token, ingest))) return null;
  return token;
}

/**
 * Returns when the caller may read; throws `ConvexError({code: "unauthorized"})` otherwise.
 * `env` is the deployment's environment (a parameter for the tests).
 */
export async function authorizeRead(ctx: AuthCtx, token: string | undefined, env: Env = process.env): Promise<void> {
  const expected = await readToken(env);
  const identities = readIdentities(env);
  if (expected === null && identities.length === 0) {
    refuse("reads are not configured on this deployment: set ATLASD_READ_TOKEN or ATLASD_READ_IDENTITIES");
  }
  // Both checks always run when configured, so the answer's timing does not
  // tell which one failed.
  const tokenOk = expected !== null && token !== undefined && token !== "" && (await tokensMatch(token, expected));
  let identityOk = false;
  if (identities.length > 0) {
    const identity = await ctx.auth.getUserIdentity();
    identityOk =
      identity !== null && (identities.includes(identity.tokenIdentifier) || identities.includes(identity.issuer));
  }
  if (!tokenOk && !identityOk) refuse("a valid read token or an allowed signed-in identity is required");
}
