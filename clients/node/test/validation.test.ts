import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { checkEvent, newEventId, type EventInput } from "atlasd-client";

import { Daemon, rawRequest } from "./support/daemon.js";

const deep = (levels: number): Record<string, unknown> => {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { d: value };
  return value;
};

/** Events at and around each limit of the daemon's checks. */
const CASES: [string, Partial<EventInput>][] = [
  ["a plain event", {}],
  ["an empty stream", { stream: "" }],
  ["a 200-character stream", { stream: "s".repeat(200) }],
  ["a 201-character stream", { stream: "s".repeat(201) }],
  ["a stream of 150 emoji (300 UTF-16 units)", { stream: "\u{1F600}".repeat(150) }],
  ["a stream with a newline", { stream: "a\nb" }],
  ["a stream with a C1 control", { stream: "a\u0085b" }],
  ["a type with a space", { type: "Bad Type" }],
  ["a 100-character type", { type: "T".repeat(100) }],
  ["a 101-character type", { type: "T".repeat(101) }],
  ["a field starting with $", { data: { a: { $ref: 1 } } }],
  ["an empty field name", { data: { "": 1 } }],
  ["a non-ASCII field name", { data: { "caf\u00e9": 1 } }],
  ["a field name with a tab", { data: { "a\tb": 1 } }],
  ["a 1024-character field name", { data: { ["k".repeat(1024)]: 1 } }],
  ["a 1025-character field name", { data: { ["k".repeat(1025)]: 1 } }],
  ["2**53", { data: { n: 2 ** 53 } }],
  ["-(2**53)", { data: { n: -(2 ** 53) } }],
  ["2**53 + 2", { data: { n: 2 ** 53 + 2 } }],
  ["1e20 (written as an integer)", { data: { n: 1e20 } }],
  ["1e21 (written with an exponent)", { data: { n: 1e21 } }],
  ["a float", { data: { n: 0.5 } }],
  ["8192 array items", { data: { a: new Array(8192).fill(0) } }],
  ["8193 array items", { data: { list: [1, new Array(8193).fill(0)] } }],
  ["1024 object fields", { data: Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`f${i}`, i])) }],
  ["1025 object fields", { data: { o: Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`f${i}`, i])) } }],
  ["data 15 levels deep", { data: deep(15) }],
  ["data 16 levels deep", { data: deep(16) }],
  ["meta 16 levels deep", { meta: deep(16) }],
  ["meta with a $ field", { meta: { $x: 1 } }],
  ["an event id not a UUID", { event_id: "not-a-uuid" }],
  ["an uppercase event id", { event_id: "0190A0B0-C0D0-7E0F-8A0B-0C0D0E0F1A2B" }],
  ["a negative occurred_at", { occurred_at: -1 }],
  ["occurred_at 2**53", { occurred_at: 2 ** 53 }],
  ["a fractional occurred_at", { occurred_at: 1.5 }],
  ["a negative expected_version", { expected_version: -1 }],
  ["an event just under 1 MiB", { data: { s: "x".repeat(1024 * 1024 - 600) } }],
  ["an event just over 1 MiB", { data: { s: "x".repeat(1024 * 1024 - 100) } }],
  ["a pack type missing a required field", { type: "BuildStarted", data: { prd_id: "p", prd_name: "n" } }],
  ["a pack type with a value outside its enum", { type: "BuildCompleted", data: { build_id: "b", status: "sideways" } }],
  ["a pack type with a wrong field type", { type: "TaskLogged", data: { build_id: "b", task_id: "t", title: "x", agent: "a", status: "done", dependencies: "t0", phase: 1 } }],
  ["a pack type with an empty id", { type: "AssetDownloaded", data: { asset_id: "" } }],
  ["a pack type with null optional fields and extra ones", { type: "AgentJobStarted", data: { job_id: "j", agent: "a", project_id: null, more: 1 } }],
  ["an event over 1 MiB in multi-byte text", { data: { s: "\u00e9".repeat(600 * 1024) } }],
];

function event(overrides: Partial<EventInput>): EventInput {
  return {
    stream: "v:case",
    type: "Case",
    data: { ok: true },
    event_id: newEventId(),
    occurred_at: Date.now(),
    ...overrides,
  };
}

function nodeVerdict(input: EventInput): string {
  try {
    checkEvent(input);
    return "ok";
  } catch (error) {
    return (error as Error).message;
  }
}

describe("the client's checks agree with the daemon's", () => {
  let daemon: Daemon;

  before(async () => {
    daemon = await new Daemon().start();
  });

  after(async () => {
    await daemon.remove();
  });

  for (const [name, overrides] of CASES) {
    test(`${name}: accepted or refused alike, with the same message`, async () => {
      const input = event(overrides);
      const answer = await rawRequest(daemon.socket, { op: "append", ...input, stream: input.stream });
      const daemonVerdict = answer["ok"] === true ? "ok" : String((answer["error"] as { message: string }).message);
      const verdict = nodeVerdict(input);
      const code = answer["ok"] === true ? null : (answer["error"] as { code: string }).code;
      if (code === "bad_request") {
        // refused by the wire types before the value checks: the client refuses it too
        assert.notEqual(verdict, "ok");
      } else if (daemonVerdict.startsWith("event is ")) {
        // the sizes differ by the few bytes of fields the daemon sets (seq, hash, ...)
        assert.match(verdict, /^event is \d+ bytes encoded, more than 1048576$/);
      } else {
        assert.equal(verdict, daemonVerdict);
      }
    });
  }
});
