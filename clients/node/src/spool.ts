/**
 * Write events to the spool drop directory when no daemon answers: the same
 * files the Python client writes, which the daemon ingests when it runs.
 *
 * A spool file is NDJSON, one event per line, each line shaped like an
 * `append_batch` item (`stream`, `type`, `data`, `event_id`, optional
 * `meta`, `occurred_at`). The daemon appends each file as one atomic batch,
 * oldest name first; a name is `NANOSECONDS-PID-RANDOM.ndjson` (the
 * nanoseconds zero-padded to 20 digits, so names sort by time).
 *
 * Resource handling: the file is written under a temporary name
 * (`.tmp-NAME.part`, which the daemon ignores), fsynced, renamed to its
 * final name, and the directory is fsynced, so the daemon never sees a
 * partial file and a power cut never loses a renamed one.
 *
 * Error handling: every event is checked first with the daemon's rules
 * (`InvalidValue`, nothing written); a failure while writing removes the
 * temporary file and propagates.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

import { InvalidValue } from "./errors.js";
import { checkEvent, type EventInput } from "./validation.js";

/** Only files with this suffix are ingested. */
export const SPOOL_SUFFIX = ".ndjson";
/** Files being written start with this and end in `.part`; the daemon skips them. */
export const TEMP_PREFIX = ".tmp-";
/** Readable by the directory's group, so a system daemon whose group owns a setgid spool dir can read them. */
const FILE_MODE = 0o640;

let lastNs = 0n;

/** Nanoseconds since the epoch, increasing within this process (so one writer's files keep their order). */
function epochNs(): bigint {
  const now = performance.timeOrigin + performance.now();
  const ms = Math.floor(now);
  let ns = BigInt(ms) * 1_000_000n + BigInt(Math.floor((now - ms) * 1e6));
  if (ns <= lastNs) ns = lastNs + 1n;
  lastNs = ns;
  return ns;
}

/** One spool line: the fields of an `append_batch` item, unset ones left out. */
function toLine(event: EventInput): string {
  const line: Record<string, unknown> = {
    stream: event.stream,
    type: event.type,
    data: event.data,
    event_id: event.event_id,
  };
  if (event.meta !== null && event.meta !== undefined) line["meta"] = event.meta;
  if (event.occurred_at !== null && event.occurred_at !== undefined) line["occurred_at"] = event.occurred_at;
  return JSON.stringify(line) + "\n";
}

/**
 * Write `events` as one spool file and return its final path.
 *
 * Every event must carry an `event_id` (so re-ingesting never duplicates)
 * and no `expected_version` (it cannot be checked offline).
 */
export async function writeSpoolFile(spoolDir: string, events: readonly EventInput[]): Promise<string> {
  if (events.length === 0) throw new InvalidValue("nothing to spool: no events");
  events.forEach((event, index) => {
    if (!event.event_id) {
      throw new InvalidValue(`events[${index}].event_id is required to spool an event`);
    }
    if (event.expected_version !== null && event.expected_version !== undefined) {
      throw new InvalidValue(
        `events[${index}].expected_version cannot be checked offline; not spooled`,
      );
    }
    checkEvent(event, events.length > 1 ? `events[${index}].` : "");
  });
  const body = events.map(toLine).join("");

  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const stem = `${epochNs().toString().padStart(20, "0")}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const temp = join(spoolDir, `${TEMP_PREFIX}${stem}.part`);
  const final = join(spoolDir, `${stem}${SPOOL_SUFFIX}`);
  const handle = await open(temp, "wx", FILE_MODE);
  try {
    try {
      await handle.chmod(FILE_MODE); // the umask may have narrowed it
      await handle.writeFile(body, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, final);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(spoolDir);
  return final;
}

async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
