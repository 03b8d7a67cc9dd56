/** HTTP routes of the deployment: the atlasd ingest endpoint (docs/sync.md). */
import { httpRouter } from "convex/server";
import { getStatus, postIngest } from "./endpoint";

const http = httpRouter();

http.route({ path: "/atlasd/ingest", method: "POST", handler: postIngest });
http.route({ path: "/atlasd/ingest/status", method: "GET", handler: getStatus });

export default http;
