/**
 * Who may read: the read token, an allowed Convex auth identity, nobody
 * else; and every public function of the deployment checks it.
 */
import { afterEach, describe, expect, test } from "vitest";
import { api } from "../functions/_generated/api";
import { backend, modules } from "./helpers";
import { ALLOWED, configure, INGEST_TOKEN, ISSUER, READ_TOKEN, refusal } from "./readers";

afterEach(() => configure({}));

const PAGE = { numItems: 10, cursor: null };

/**
 * Arguments for each public query with which it would answer if authorized.
 * A public function missing here fails the surface test below.
 */
const PUBLIC_CALLS: Record<string, Record<string, unknown>> = {
  "read:events": { paginationOpts: PAGE },
  "read:origins": {},
  "read:view": { view: "builds", paginationOpts: PAGE },
};

type AnyQuery = Parameters<ReturnType<typeof backend>["query"]>[0];

/** Every public, non-HTTP function the modules export, as "module:name". */
async function publicFunctions(): Promise<string[]> {
  const found: string[] = [];
  for (const [path, load] of Object.entries(modules)) {
    if (path.includes("_generated")) continue;
    const mod = (await load()) as Record<string, { isPublic?: boolean; isHttp?: boolean }>;
    for (const [name, value] of Object.entries(mod)) {
      if (value?.isPublic === true && value.isHttp !== true) {
        found.push(`${path.replace(/^\.\.\/functions\//, "").replace(/\.ts$/, "")}:${name}`);
      }
    }
  }
  return found.sort();
}

function reference(name: string): AnyQuery {
  const [module, fn] = name.split(":") as [string, string];
  return (api as unknown as Record<string, Record<string, AnyQuery>>)[module]![fn]!;
}

describe("every public function checks the caller", () => {
  test("the public functions are exactly the read API", async () => {
    expect(await publicFunctions()).toEqual(Object.keys(PUBLIC_CALLS).sort());
  });

  type Caller = (t: ReturnType<typeof backend>) => Pick<ReturnType<typeof backend>, "query">;
  const callers: Array<[string, Caller, string | undefined]> = [
    ["no token", (t) => t, undefined],
    ["a wrong token", (t) => t, "not-the-read-token"],
    ["the ingest token", (t) => t, INGEST_TOKEN],
    ["an empty token", (t) => t, ""],
    ["an identity not listed", (t) => t.withIdentity({ issuer: "https://other.example.test", subject: "mallory" }), undefined],
    ["a listed subject of another issuer", (t) => t.withIdentity({ issuer: "https://other.example.test", subject: "alice" }), undefined],
  ];

  test.each(Object.keys(PUBLIC_CALLS))("%s refuses every caller that is not allowed", async (name) => {
    configure({ read: READ_TOKEN, identities: ALLOWED, ingest: INGEST_TOKEN });
    const t = backend();
    for (const [, as, token] of callers) {
      const args = { ...PUBLIC_CALLS[name], ...(token === undefined ? {} : { token }) };
      expect(await refusal(as(t).query(reference(name), args as never))).toMatchObject({ code: "unauthorized" });
    }
  });

  test.each(Object.keys(PUBLIC_CALLS))("%s answers the read token and an allowed identity", async (name) => {
    configure({ read: READ_TOKEN, identities: ALLOWED, ingest: INGEST_TOKEN });
    const t = backend();
    await expect(t.query(reference(name), { ...PUBLIC_CALLS[name], token: READ_TOKEN } as never)).resolves.toBeDefined();
    const alice = t.withIdentity({ issuer: ISSUER, subject: "alice" });
    await expect(alice.query(reference(name), PUBLIC_CALLS[name] as never)).resolves.toBeDefined();
  });

  test.each(Object.keys(PUBLIC_CALLS))("%s refuses everyone when no reader is configured", async (name) => {
    configure({ ingest: INGEST_TOKEN });
    const t = backend();
    for (const token of [undefined, "", INGEST_TOKEN, READ_TOKEN]) {
      const args = { ...PUBLIC_CALLS[name], ...(token === undefined ? {} : { token }) };
      const data = await refusal(t.withIdentity({ issuer: ISSUER, subject: "alice" }).query(reference(name), args as never));
      expect(data).toMatchObject({ code: "unauthorized" });
      expect(data.message).toContain("not configured");
    }
  });
});

describe("the read token", () => {
  test("is refused when it equals the ingest token, so a reader never holds the write secret", async () => {
    configure({ read: INGEST_TOKEN, ingest: INGEST_TOKEN });
    const t = backend();
    const data = await refusal(t.query(api.read.origins, { token: INGEST_TOKEN }));
    expect(data).toMatchObject({ code: "unauthorized" });
  });

  test("works alone, without identities configured", async () => {
    configure({ read: READ_TOKEN });
    const t = backend();
    await expect(t.query(api.read.origins, { token: READ_TOKEN })).resolves.toEqual([]);
    expect(await refusal(t.query(api.read.origins, { token: READ_TOKEN.slice(0, -1) }))).toMatchObject({ code: "unauthorized" });
  });
});

describe("allowed identities", () => {
  test("an identity is allowed by its tokenIdentifier, exactly", async () => {
    configure({ identities: ` ${ALLOWED} , https://else.example.test|bob ` });
    const t = backend();
    await expect(t.withIdentity({ issuer: ISSUER, subject: "alice" }).query(api.read.origins, {})).resolves.toEqual([]);
    await expect(t.withIdentity({ tokenIdentifier: "https://else.example.test|bob" }).query(api.read.origins, {})).resolves.toEqual([]);
    const carol = t.withIdentity({ issuer: ISSUER, subject: "carol" });
    expect(await refusal(carol.query(api.read.origins, {}))).toMatchObject({ code: "unauthorized" });
  });

  test("every identity of a listed issuer is allowed", async () => {
    configure({ identities: ISSUER });
    const t = backend();
    await expect(t.withIdentity({ issuer: ISSUER, subject: "carol" }).query(api.read.origins, {})).resolves.toEqual([]);
    const other = t.withIdentity({ issuer: `${ISSUER}.evil`, subject: "carol" });
    expect(await refusal(other.query(api.read.origins, {}))).toMatchObject({ code: "unauthorized" });
  });

  test("a token does not help when only identities are configured", async () => {
    configure({ identities: ALLOWED, ingest: INGEST_TOKEN });
    const t = backend();
    for (const token of [INGEST_TOKEN, READ_TOKEN, ""]) {
      expect(await refusal(t.query(api.read.origins, { token }))).toMatchObject({ code: "unauthorized" });
    }
  });
});
