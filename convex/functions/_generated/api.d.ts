/* eslint-disable */
/**
 * Generated `api` utility.
 *
 * THIS CODE IS AUTOMATICALLY GENERATED.
 *
 * To regenerate, run `npx convex dev`.
 * @module
 */

import type {
  ApiFromModules,
  FilterApi,
  FunctionReference,
} from "convex/server";
import type * as endpoint from "../endpoint.js";
import type * as http from "../http.js";
import type * as ingest from "../ingest.js";
import type * as inspect from "../inspect.js";
import type * as lib_canonical from "../lib/canonical.js";
import type * as lib_envelope from "../lib/envelope.js";
import type * as lib_limits from "../lib/limits.js";
import type * as lib_project from "../lib/project.js";
import type * as lib_token from "../lib/token.js";
import type * as views from "../views.js";

/**
 * A utility for referencing Convex functions in your app's API.
 *
 * Usage:
 * ```js
 * const myFunctionReference = api.myModule.myFunction;
 * ```
 */
declare const fullApi: ApiFromModules<{
  endpoint: typeof endpoint;
  http: typeof http;
  ingest: typeof ingest;
  inspect: typeof inspect;
  "lib/canonical": typeof lib_canonical;
  "lib/envelope": typeof lib_envelope;
  "lib/limits": typeof lib_limits;
  "lib/project": typeof lib_project;
  "lib/token": typeof lib_token;
  views: typeof views;
}>;
export declare const api: FilterApi<
  typeof fullApi,
  FunctionReference<any, "public">
>;
export declare const internal: FilterApi<
  typeof fullApi,
  FunctionReference<any, "internal">
>;
