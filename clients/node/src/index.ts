/**
 * `atlasd-client`: the Node client of the atlasd event-log daemon.
 *
 * `AtlasdClient` speaks the socket protocol (pipelined; typed results and
 * errors; `subscribe`/`watch` as async iterators) and spools appends when
 * no daemon answers. The ATLAS facade (`startConvexBuild`, ...) is exported
 * here and from `atlasd-client/atlas`.
 */
export { AtlasdClient, type ClientOptions } from "./client.js";
export {
  AtlasdError,
  BadRequest,
  DaemonUnreachable,
  ERROR_CLASSES,
  EventIdConflict,
  Forbidden,
  Internal,
  InvalidValue,
  SlowConsumer,
  TooLarge,
  Unavailable,
  VersionConflict,
  errorFromWire,
} from "./errors.js";
export { newEventId } from "./ids.js";
export { defaultDataDir, defaultSocketPath, resolveDataDir, resolveSocketPath, spoolDirFor, SYSTEM_PATHS } from "./paths.js";
export type { SystemPaths } from "./paths.js";
export { PACK_EVENTS, checkPackFields, eventSchema, type EventSchema, type FieldSchema, type FieldType } from "./packs.js";
export { SPOOL_SUFFIX, TEMP_PREFIX, writeSpoolFile } from "./spool.js";
export { Subscription, Watch } from "./stream.js";
export type * from "./types.js";
export { checkEvent, type EventInput } from "./validation.js";
export * from "./atlas.js";
