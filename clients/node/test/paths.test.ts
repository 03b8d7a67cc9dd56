import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";

import { resolveDataDir, resolveSocketPath, spoolDirFor } from "atlasd-client";

import { python } from "./support/daemon.js";

const ENVS: Record<string, string>[] = [
  {},
  { XDG_RUNTIME_DIR: "/run/user/1234" },
  { ATLASD_SOCKET: "/tmp/x/a.sock", XDG_RUNTIME_DIR: "/run/user/1234" },
  { ATLASD_DATA_DIR: "/srv/atlasd", XDG_STATE_HOME: "/home/u/.state" },
  { XDG_STATE_HOME: "/home/u/.state" },
  { HOME: "/home/someone" },
];

test("socket, data dir and spool resolve exactly as the Python client resolves them, under each environment", () => {
  for (const env of ENVS) {
    const full = { HOME: "/home/default", ...env };
    const expected = python(
      "import json, os\n" +
        "os.environ.clear(); os.environ.update(json.loads(input()))\n" +
        "from atlasd.client.paths import resolve_socket_path, resolve_data_dir, spool_dir_for\n" +
        "print(json.dumps([str(resolve_socket_path()), str(resolve_data_dir()), str(spool_dir_for(resolve_data_dir())), str(resolve_socket_path('/x.sock')), str(resolve_data_dir('/d'))]))",
      JSON.stringify(full),
    );
    const saved = { ...process.env };
    try {
      for (const key of Object.keys(process.env)) delete process.env[key];
      Object.assign(process.env, full);
      const actual = [
        resolveSocketPath(),
        resolveDataDir(),
        spoolDirFor(resolveDataDir()),
        resolveSocketPath("/x.sock"),
        resolveDataDir("/d"),
      ];
      assert.deepEqual(actual, expected, JSON.stringify(env));
    } finally {
      for (const key of Object.keys(process.env)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  }
});

test("a client of an installed system service resolves its socket and data dir as the Python client does", () => {
  const root = mkdtempSync(join(tmpdir(), "atlasd-sys-"));
  try {
    const system = { socket: join(root, "run", "atlasd.sock"), dataDir: join(root, "lib") };
    const env = { HOME: root, XDG_RUNTIME_DIR: join(root, "user-run"), XDG_STATE_HOME: join(root, "state") };
    const cases: [string, Record<string, string>][] = [
      ["not installed", env],
      ["installed", env],
      ["installed, data dir set", { ...env, ATLASD_DATA_DIR: "/srv/atlasd" }],
      ["installed, system socket named", { ...env, ATLASD_SOCKET: system.socket }],
    ];
    for (const [name, caseEnv] of cases) {
      if (name === "installed") mkdirSync(dirname(system.socket));
      const expected = python(
        "import json, os, sys\n" +
          "from pathlib import Path\n" +
          "args = json.loads(input())\n" +
          "os.environ.clear(); os.environ.update(args['env'])\n" +
          "from atlasd.client.paths import SystemPaths, resolve_socket_path, resolve_data_dir\n" +
          "s = SystemPaths(socket=Path(args['socket']), data_dir=Path(args['data_dir']))\n" +
          "print(json.dumps([str(resolve_socket_path(system=s)), str(resolve_data_dir(system=s))]))",
        JSON.stringify({ env: caseEnv, socket: system.socket, data_dir: system.dataDir }),
      );
      const actual = [
        resolveSocketPath(null, caseEnv, system),
        resolveDataDir(null, caseEnv, undefined, system),
      ];
      assert.deepEqual(actual, expected, name);
      if (name === "installed") assert.deepEqual(actual, [system.socket, system.dataDir]);
      if (name === "not installed") assert.notEqual(actual[0], system.socket);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
