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
 *
 * A client of the system service: when the default socket does not exist and
 * the system service is installed (`/run/atlasd` exists), the socket is
 * `/run/atlasd/atlasd.sock`; a client of that socket with no data dir given
 * uses `/var/lib/atlasd`, so offline appends are spooled where the system
 * daemon looks (or refused), never where no daemon reads.
 */
import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

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

/** Where the system service keeps its socket and data. */
export interface SystemPaths {
  readonly socket: string;
  readonly dataDir: string;
}

export const SYSTEM_PATHS: SystemPaths = {
  socket: "/run/atlasd/atlasd.sock",
  dataDir: "/var/lib/atlasd",
};

function systemInstalled(system: SystemPaths): boolean {
  try {
    return statSync(dirname(system.socket)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The socket to connect to: `explicit`, else `$ATLASD_SOCKET`, else the
 * default; the system socket instead of a default that does not exist when
 * the system service is installed.
 */
export function resolveSocketPath(
  explicit?: string | null,
  env: Env = process.env,
  system: SystemPaths = SYSTEM_PATHS,
): string {
  if (explicit) return explicit;
  const fromEnv = env["ATLASD_SOCKET"];
  if (fromEnv) return fromEnv;
  const fallback = defaultSocketPath(env);
  if (!existsSync(fallback) && systemInstalled(system)) return system.socket;
  return fallback;
}

/** The data dir a daemon started with no flags uses (the spool lives in it). */
export function defaultDataDir(env: Env = process.env): string {
  const explicit = env["ATLASD_DATA_DIR"];
  if (explicit) return explicit;
  if (euid() === 0) return "/var/lib/atlasd";
  const state = env["XDG_STATE_HOME"];
  return join(state ? state : join(homedir(), ".local", "state"), "atlasd");
}

/**
 * The data dir whose spool takes offline appends: `explicit`, else
 * `$ATLASD_DATA_DIR`, else the system data dir for a client of the system
 * socket (`socketPath`, resolved when not given), else the default.
 */
export function resolveDataDir(
  explicit?: string | null,
  env: Env = process.env,
  socketPath?: string,
  system: SystemPaths = SYSTEM_PATHS,
): string {
  if (explicit) return explicit;
  if (env["ATLASD_DATA_DIR"]) return defaultDataDir(env);
  const socket = socketPath ?? resolveSocketPath(null, env, system);
  if (socket === system.socket) return system.dataDir;
  return defaultDataDir(env);
}

/** `DATA_DIR/spool`: the drop directory the daemon watches. */
export function spoolDirFor(dataDir: string): string {
  return join(dataDir, "spool");
}
