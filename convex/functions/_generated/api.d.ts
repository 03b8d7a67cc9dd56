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
import type * as lib_auth from "../lib/auth.js";
import type * as lib_canonical from "../lib/canonical.js";
import type * as lib_engine from "../lib/engine.js";
import type * as lib_envelope from "../lib/envelope.js";
import type * as lib_fold from "../lib/fold.js";
import type * as lib_ingest_views from "../lib/ingest_views.js";
import type * as lib_layout from "../lib/layout.js";
import type * as lib_limits from "../lib/limits.js";
import type * as lib_packs from "../lib/packs.js";
import type * as lib_packs_generated from "../lib/packs_generated.js";
import type * as lib_rows from "../lib/rows.js";
import type * as lib_token from "../lib/token.js";
import type * as lib_viewquery from "../lib/viewquery.js";
import type * as read from "../read.js";
import type * as rebuild from "../rebuild.js";
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
  "lib/auth": typeof lib_auth;
  "lib/canonical": typeof lib_canonical;
  "lib/engine": typeof lib_engine;
  "lib/envelope": typeof lib_envelope;
  "lib/fold": typeof lib_fold;
  "lib/ingest_views": typeof lib_ingest_views;
  "lib/layout": typeof lib_layout;
  "lib/limits": typeof lib_limits;
  "lib/packs": typeof lib_packs;
  "lib/packs_generated": typeof lib_packs_generated;
  "lib/rows": typeof lib_rows;
  "lib/token": typeof lib_token;
  "lib/viewquery": typeof lib_viewquery;
  read: typeof read;
  rebuild: typeof rebuild;
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
