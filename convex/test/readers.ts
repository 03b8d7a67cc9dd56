/** Shared pieces of the read API suites: tokens, refusals, paging to the end. */
import type { Backend } from "./helpers";

export const READ_TOKEN = "read-token-abcdef0123456789";
export const INGEST_TOKEN = "ingest-token-0123456789abcdef";
export const ISSUER = "https://auth.example.test";
export const ALLOWED = `${ISSUER}|alice`;

/** Sets the deployment's read configuration; `undefined` unsets a variable. */
export function configure(env: { read?: string; identities?: string; ingest?: string }): void {
  const set = (name: string, value: string | undefined): void => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  set("ATLASD_READ_TOKEN", env.read);
  set("ATLASD_READ_IDENTITIES", env.identities);
  set("ATLASD_INGEST_TOKEN", env.ingest);
}

/** The `data` of the ConvexError `call` throws; fails when it does not throw one. */
export async function refusal(call: Promise<unknown>): Promise<{ code?: string; message?: string }> {
  try {
    await call;
  } catch (error) {
    const data = (error as { data?: unknown }).data;
    if (data === undefined) throw error;
    return (typeof data === "string" ? JSON.parse(data) : data) as { code?: string; message?: string };
  }
  throw new Error("the call was not refused");
}

export type Page<Row> = { page: Row[]; isDone: boolean; continueCursor: string };

/** Follows `continueCursor` until `isDone`, calling `read` with each cursor; every page's rows in order. */
export async function allPages<Row>(
  read: (cursor: string | null) => Promise<Page<Row>>,
  maxPages = 100_000,
): Promise<{ rows: Row[]; pages: number }> {
  const rows: Row[] = [];
  let cursor: string | null = null;
  for (let pages = 1; pages <= maxPages; pages++) {
    const result: Page<Row> = await read(cursor);
    rows.push(...result.page);
    if (result.isDone) return { rows, pages };
    cursor = result.continueCursor;
  }
  throw new Error(`not done after ${maxPages} pages`);
}

/** Inserts `docs` into `table` directly, `chunk` documents per transaction. */
export async function insertChunked(
  t: Backend,
  table: string,
  docs: ReadonlyArray<Record<string, unknown>>,
  chunk = 2000,
): Promise<void> {
  for (let i = 0; i < docs.length; i += chunk) {
    const part = docs.slice(i, i + chunk);
    await t.run(async (ctx) => {
      const db = ctx.db as unknown as { insert(table: string, doc: Record<string, unknown>): Promise<unknown> };
      for (const doc of part) await db.insert(table, doc);
    });
  }
}
