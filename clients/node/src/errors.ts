/**
 * The errors the client raises, one class per error code of the socket protocol.
 *
 * ```
 * AtlasdError              root; code "internal" when nothing better is known
 * ├── BadRequest           bad_request: not JSON, unknown op, wrong types, missing fields
 * ├── TooLarge             too_large: a request line over the daemon's limit
 * ├── InvalidValue         invalid_value: data/meta Convex cannot store, a pack field missing
 * ├── VersionConflict      version_conflict: expected_version mismatch (.currentVersion)
 * ├── EventIdConflict      event_id_conflict: same id, different content
 * ├── Forbidden            forbidden: peer credentials not allowed
 * ├── Unavailable          unavailable: shutting down, disk full, locked out
 * ├── SlowConsumer         slow_consumer: a subscriber fell too far behind
 * ├── Internal             internal: a bug in the daemon, or an answer that makes no sense
 * └── DaemonUnreachable    client side only: no daemon answers on the socket
 * ```
 *
 * `retryable` says whether the same request may succeed later.
 */

/** Root of every atlasd error; `code` is the protocol's error code. */
export class AtlasdError extends Error {
  /** The protocol's error code. */
  readonly code: string = "internal";
  /** Whether retrying the same request later may succeed. */
  readonly retryable: boolean = false;
  /** Every field of the daemon's error object other than `code` and `message`. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

export class BadRequest extends AtlasdError {
  override readonly code = "bad_request";
}

export class TooLarge extends AtlasdError {
  override readonly code = "too_large";
}

export class InvalidValue extends AtlasdError {
  override readonly code = "invalid_value";
}

export class VersionConflict extends AtlasdError {
  override readonly code = "version_conflict";
  /** The stream's version when the append was refused. */
  readonly currentVersion: number;

  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message, details);
    const current = details["current_version"];
    this.currentVersion = typeof current === "number" ? current : -1;
  }
}

export class EventIdConflict extends AtlasdError {
  override readonly code = "event_id_conflict";
}

export class Forbidden extends AtlasdError {
  override readonly code = "forbidden";
}

export class Unavailable extends AtlasdError {
  override readonly code = "unavailable";
  override readonly retryable = true;
}

export class SlowConsumer extends AtlasdError {
  override readonly code = "slow_consumer";
  override readonly retryable = true;
}

export class Internal extends AtlasdError {
  override readonly code = "internal";
}

/** No daemon answers on the socket (never sent over the wire). */
export class DaemonUnreachable extends AtlasdError {
  override readonly code = "unreachable";
  override readonly retryable = true;
}

type ErrorClass = new (message: string, details?: Record<string, unknown>) => AtlasdError;

/** The class of each code the daemon sends. */
export const ERROR_CLASSES: Readonly<Record<string, ErrorClass>> = Object.freeze({
  bad_request: BadRequest,
  too_large: TooLarge,
  invalid_value: InvalidValue,
  version_conflict: VersionConflict,
  event_id_conflict: EventIdConflict,
  forbidden: Forbidden,
  unavailable: Unavailable,
  slow_consumer: SlowConsumer,
  internal: Internal,
});

/** The error a daemon reported in a failure line; unknown codes become `Internal`. */
export function errorFromWire(error: unknown): AtlasdError {
  if (typeof error !== "object" || error === null || Array.isArray(error)) {
    return new Internal(`malformed error from the daemon: ${JSON.stringify(error)}`);
  }
  const { code, message, ...details } = error as Record<string, unknown>;
  const codeText = typeof code === "string" ? code : "internal";
  const text = typeof message === "string" ? message : codeText;
  const cls = Object.hasOwn(ERROR_CLASSES, codeText) ? ERROR_CLASSES[codeText] : undefined;
  if (cls === undefined) {
    return new Internal(text, { code: codeText, ...details });
  }
  return new cls(text, details);
}
