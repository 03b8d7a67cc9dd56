import assert from "node:assert/strict";
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
