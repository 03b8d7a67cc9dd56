/**
 * Pack event schemas: the data fields an event type defined by a built-in
 * pack must carry. The schemas are bundled from the daemon's pack files by
 * `npm run gen` (into `pack-schemas.ts`); a test fails when the bundled copy
 * differs from the files.
 *
 * A required field must be present, non-null and of its type; an optional
 * one absent, null or of its type; other fields are allowed. Types: `id` (a
 * non-empty string), `string`, `integer`, `number`, `boolean`, `object`,
 * `array`, `string_list`, `any`. Messages are the daemon's: `data.NAME: required`,
 * `data.NAME: expected TYPE`, `data.NAME: expected one of A, B`.
 *
 * Only the built-in packs are known here: an operator's own packs
 * (`CONFIG_DIR/packs/`) are checked by the daemon when it appends, so a
 * spooled event of such a type that breaks its schema is rejected at ingest.
 */
import { InvalidValue } from "./errors.js";
import { PACK_EVENTS } from "./pack-schemas.js";

export type FieldType =
  | "id"
  | "string"
  | "integer"
  | "number"
  | "boolean"
  | "object"
  | "array"
  | "string_list"
  | "any";

export interface FieldSchema {
  readonly type: FieldType;
  readonly required: boolean;
  /** The only values allowed (JSON scalars), when given. */
  readonly enum?: readonly (string | number | boolean | null)[];
}

export interface EventSchema {
  readonly pack: string;
  /** How the event's stream is named, e.g. `thread:{thread_id}`. */
  readonly stream?: string;
  readonly fields: Readonly<Record<string, FieldSchema>>;
}

export { PACK_EVENTS };

function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hasType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case "id":
      return typeof value === "string" && value.length > 0;
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "string_list":
      return Array.isArray(value) && value.every((item) => typeof item === "string");
    case "any":
      return true;
  }
}

/** The schema of a pack event type, or undefined for a type no pack defines. */
export function eventSchema(type: string): EventSchema | undefined {
  return Object.hasOwn(PACK_EVENTS, type) ? PACK_EVENTS[type] : undefined;
}

/** Refuse `data` of a pack-defined `type` that lacks a required field or has a wrong type. */
export function checkPackFields(type: string, data: Record<string, unknown>): void {
  const schema = eventSchema(type);
  if (schema === undefined) return;
  for (const [name, field] of Object.entries(schema.fields)) {
    const value = Object.hasOwn(data, name) ? data[name] : undefined;
    if (value === undefined || value === null) {
      if (field.required) throw new InvalidValue(`data.${name}: required`);
      continue;
    }
    if (!hasType(value, field.type)) {
      throw new InvalidValue(`data.${name}: expected ${field.type}`);
    }
    // JSON equality: true is not 1, and 1 is 1.0 (JavaScript's === agrees on scalars)
    if (field.enum !== undefined && !field.enum.some((allowed) => allowed === value)) {
      const listed = field.enum.map((allowed) => (typeof allowed === "string" ? allowed : String(allowed)));
      throw new InvalidValue(`data.${name}: expected one of ${listed.join(", ")}`);
    }
  }
}

/** The stream an event of a pack type goes to, from the pack's template and the data. */
export function streamFor(type: string, data: Record<string, unknown>): string {
  const template = eventSchema(type)?.stream;
  if (template === undefined) throw new InvalidValue(`no pack names a stream for ${type}`);
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const value = data[name];
    if (typeof value !== "string" || value.length === 0) {
      throw new InvalidValue(`data.${name}: required`);
    }
    return value;
  });
}
