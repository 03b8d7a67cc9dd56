import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  AtlasdClient,
  AtlasdError,
  BadRequest,
  DaemonUnreachable,
  ERROR_CLASSES,
  EventIdConflict,
  InvalidValue,
  TooLarge,
  VersionConflict,
  errorFromWire,
} from "atlasd-client";

import { Daemon, python } from "./support/daemon.js";

describe("error classes", () => {
  test("every error code of the daemon maps to one class of its own", () => {
    const codes = python(
      "import json, atlasd.errors as e; print(json.dumps(sorted(e._BY_CODE)))",
    ) as string[];
    assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), codes);
    const classes = new Set(Object.values(ERROR_CLASSES));
    assert.equal(classes.size, codes.length);
    for (const code of codes) {
      const error = errorFromWire({ code, message: "m" });
      assert.equal(error.code, code);
      assert.ok(error instanceof AtlasdError);
      assert.equal(error.constructor, ERROR_CLASSES[code]);
    }
  });

  test("an unknown code becomes Internal and keeps the code in its details", () => {
    const error = errorFromWire({ code: "brand_new", message: "m" });
    assert.equal(error.code, "internal");
    assert.equal(error.details["code"], "brand_new");
  });

  test("retryable is true exactly for unavailable, slow_consumer and unreachable", () => {
    const retryable = Object.entries(ERROR_CLASSES)
      .filter(([, cls]) => new cls("m").retryable)
      .map(([code]) => code)
      .sort();
    assert.deepEqual(retryable, ["slow_consumer", "unavailable"]);
    assert.equal(new DaemonUnreachable("m").retryable, true);
  });
});

describe("errors from a running daemon", () => {
  let daemon: Daemon;
  let client: AtlasdClient;

  before(async () => {
    daemon = await new Daemon().start();
    client = await AtlasdClient.connect({ socket: daemon.socket, dataDir: daemon.dataDir });
  });

  after(async () => {
    client.close();
    await daemon.remove();
  });

  test("a stale expectedVersion rejects with VersionConflict carrying the current version", async () => {
    await client.append({ stream: "e:v", type: "T", data: {} });
    const error = await client.append({ stream: "e:v", type: "T", data: {}, expectedVersion: 0 }).catch((e) => e);
    assert.ok(error instanceof VersionConflict);
    assert.equal(error.currentVersion, 1);
  });

  test("a reused event id with other content rejects with EventIdConflict", async () => {
    const first = await client.append({ stream: "e:id", type: "T", data: { a: 1 } });
    await assert.rejects(client.append({ stream: "e:id", type: "T", data: { a: 2 }, eventId: first.eventId }), EventIdConflict);
  });

  test("a value Convex cannot store rejects with InvalidValue naming its path", async () => {
    await assert.rejects(
      client.append({ stream: "e:bad", type: "T", data: { steps: [{}, { $ref: 1 }] } }),
      (error: unknown) => error instanceof InvalidValue && /data\.steps\[1\]\.\$ref/.test(error.message),
    );
  });

  test("an unknown op rejects with BadRequest and the connection keeps serving", async () => {
    await assert.rejects(client.call("no_such_op"), BadRequest);
    assert.ok((await client.ping()).origin);
  });

  test("a request line over the daemon's limit rejects with TooLarge, and the next call reconnects", async () => {
    const big = "x".repeat(3 * 1024 * 1024);
    await assert.rejects(client.append({ stream: "e:big", type: "T", data: { big } }), TooLarge);
    assert.ok((await client.ping()).origin);
  });

  test("no daemon on the socket rejects reads with DaemonUnreachable", async () => {
    const nobody = new AtlasdClient({ socket: `${daemon.root}/none.sock`, dataDir: daemon.dataDir });
    await assert.rejects(nobody.status(), DaemonUnreachable);
    nobody.close();
  });
});
