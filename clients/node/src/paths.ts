/**
 * Where the client finds the daemon's socket and the spool: the daemon's own
 * resolution, so a client and a daemon started the same way meet.
 *
 * Socket: the explicit argument, else `ATLASD_SOCKET`, else
 * `$XDG_RUNTIME_DIR/atlasd/atlasd.sock`, else `/run/atlasd/atlasd.sock` as
 * root, else `/tmp/atlasd-UID/atlasd.sock`.
 * Data dir: the explicit argument, else `ATLASD_DATA_DIR`, else
 * `/var/lib/atlasd` as root, else `$XDG_STATE_HOME/atlasd` (default
 * `~/.local/state/atlasd`). The spool is `DATA_DIR/spool`.
 */
import { homedir } from "node:os";
import { join } from "node:path";

type Env = Readonly<Record<string, string | undefined>>;

function uid(): number {
  return typeof process.getuid === "function" ? process.getuid() : -1;
}

function euid(): number {
  return typeof process.geteuid === "function" ? process.geteuid() : -1;
}

/** The socket a daemon started with no flags listens on. */
export function defaultSocketPath(env: Env = process.env): string {
  const runtime = env["XDG_RUNTIME_DIR"];
  if (runtime) return join(runtime, "atlasd", "atlasd.sock");
  if (euid() === 0) return "/run/atlasd/atlasd.sock";
  return `/tmp/atlasd-${uid()}/atlasd.sock`;
}

/** The socket to connect to: `explicit`, else `$ATLASD_SOCKET`, else the default. */
export function resolveSocketPath(explicit?: string | null, env: Env = process.env): string {
  if (explicit) return explicit;
  const fromEnv = env["ATLASD_SOCKET"];
  if (fromEnv) return fromEnv;
  return defaultSocketPath(env);
}

/** The data dir a daemon started with no flags uses (the spool lives in it). */
export function defaultDataDir(env: Env = process.env): string {
  const explicit = env["ATLASD_DATA_DIR"];
  if (explicit) return explicit;
  if (euid() === 0) return "/var/lib/atlasd";
  const state = env["XDG_STATE_HOME"];
  return join(state ? state : join(homedir(), ".local", "state"), "atlasd");
}

/** The data dir whose spool takes offline appends; same order as the socket. */
export function resolveDataDir(explicit?: string | null, env: Env = process.env): string {
  if (explicit) return explicit;
  return defaultDataDir(env);
}

/** `DATA_DIR/spool`: the drop directory the daemon watches. */
export function spoolDirFor(dataDir: string): string {
  return join(dataDir, "spool");
}
