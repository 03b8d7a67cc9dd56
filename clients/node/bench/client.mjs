// The Node client against a raw socket, same daemon, same run (driven by bench/bench_node_client.py).
//
//   node bench/client.mjs SOCKET [PIPELINED] [SEQUENTIAL]
//
// Prints one JSON object: pipelined rates (client, raw) and one-at-a-time latencies in ms.
import { createConnection } from "node:net";

import { AtlasdClient } from "../dist/index.js";

const WINDOW = 1000;
const [socket, pipelinedArg, sequentialArg] = process.argv.slice(2);
const PIPELINED = Number(pipelinedArg ?? 20000);
const SEQUENTIAL = Number(sequentialArg ?? 2000);
const PAYLOAD = "x".repeat(150);

function line(id, stream, i) {
  return JSON.stringify({ op: "append", id, stream, type: "T", data: { i, p: PAYLOAD } }) + "\n";
}

/** A raw NDJSON connection: write lines, await that many answer lines. */
function rawConnection(path) {
  return new Promise((resolve, reject) => {
    const conn = createConnection({ path });
    conn.setEncoding("utf8");
    let partial = "";
    let waiting = 0;
    let done = null;
    conn.on("data", (chunk) => {
      const text = partial + chunk;
      let start = 0;
      let newline;
      while ((newline = text.indexOf("\n", start)) >= 0) {
        if (!text.startsWith('{"id":', start) || text.indexOf('"ok":true', start) < 0) {
          reject(new Error(`bad answer: ${text.slice(start, newline)}`));
        }
        start = newline + 1;
        waiting -= 1;
        if (waiting === 0 && done) {
          const d = done;
          done = null;
          d();
        }
      }
      partial = text.slice(start);
    });
    conn.on("error", reject);
    conn.on("connect", () =>
      resolve({
        send(text, answers) {
          waiting += answers;
          return new Promise((r) => {
            done = r;
            conn.write(text);
          });
        },
        close: () => conn.destroy(),
      }),
    );
  });
}

// Raw and client work alternate window by window (and append by append), so the
// noise of a shared machine falls on both alike.
async function pipelined(n) {
  const raw = await rawConnection(socket);
  const client = await AtlasdClient.connect({ socket, spool: false });
  await client.ping();
  let rawMs = 0;
  let clientMs = 0;
  for (let base = 0; base < n; base += WINDOW) {
    let text = "";
    for (let i = 0; i < WINDOW; i++) text += line(base + i, `raw:${i % 10}`, base + i);
    let started = performance.now();
    await raw.send(text, WINDOW);
    rawMs += performance.now() - started;
    started = performance.now();
    const calls = [];
    for (let i = 0; i < WINDOW; i++) {
      calls.push(client.append({ stream: `cli:${i % 10}`, type: "T", data: { i: base + i, p: PAYLOAD } }));
    }
    await Promise.all(calls);
    clientMs += performance.now() - started;
  }
  raw.close();
  client.close();
  return { raw: n / (rawMs / 1000), client: n / (clientMs / 1000) };
}

async function sequential(n) {
  const raw = await rawConnection(socket);
  const client = await AtlasdClient.connect({ socket, spool: false });
  await client.ping();
  const rawTimes = [];
  const clientTimes = [];
  for (let i = 0; i < n; i++) {
    let started = performance.now();
    await raw.send(line(i, "rawseq", i), 1);
    rawTimes.push(performance.now() - started);
    started = performance.now();
    await client.append({ stream: "cliseq", type: "T", data: { i, p: PAYLOAD } });
    clientTimes.push(performance.now() - started);
  }
  raw.close();
  client.close();
  return { raw: rawTimes, client: clientTimes };
}

function pct(samples, p) {
  const ordered = [...samples].sort((a, b) => a - b);
  return ordered[Math.min(ordered.length - 1, Math.floor(ordered.length * p))];
}

// Warm both paths up (JIT, daemon caches) before measuring.
await pipelined(WINDOW);
const rates = await pipelined(PIPELINED);
const times = await sequential(SEQUENTIAL);
process.stdout.write(
  JSON.stringify({
    pipelined: rates,
    sequential: {
      client: { p50: pct(times.client, 0.5), p99: pct(times.client, 0.99) },
      raw: { p50: pct(times.raw, 0.5), p99: pct(times.raw, 0.99) },
    },
  }) + "\n",
);
