import { createRoute } from "@hono/zod-openapi";
import { optionalAuth } from "../auth/index.js";
import { AssetListSchema, type AssetJson } from "../schemas.js";
import { callOpts, errorResponses, jsonContent, type App, type RouteDeps } from "./common.js";

/**
 * How long the gateway answers GET …/assets from its last copy. The list changes when prices do,
 * and the coordinator itself serves prices cached for seconds; without this every request is a
 * gRPC round trip to the coordinator (most of the route's cost: bench/README.md, B1).
 */
export const ASSETS_TTL_MS = 1_000;

export interface AssetRouteOptions {
  ttlMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export function registerAssetRoutes(app: App, deps: RouteDeps, opts: AssetRouteOptions = {}): void {
  const ttlMs = opts.ttlMs ?? ASSETS_TTL_MS;
  const now = opts.now ?? Date.now;
  // One call in flight at a time, shared by the requests that arrive meanwhile; a failed call is
  // not kept (the next request asks again).
  // The answer is kept serialized: the same few kB were stringified on every request (67–79 →
  // 53 CPU-µs per request without it, bench/README.md, B1).
  let cached: { at: number; body: Promise<string> } | undefined;
  const assetsBody = (c: Parameters<typeof callOpts>[0]): Promise<string> => {
    const t = now();
    if (cached && t - cached.at < ttlMs) return cached.body;
    const entry = {
      at: t,
      body: deps.coordinator.listAssets(callOpts(c)).then((assets: AssetJson[]) => JSON.stringify({ assets })),
    };
    cached = entry;
    entry.body.catch(() => {
      if (cached === entry) cached = undefined;
    });
    return entry.body;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/instant-trade/assets",
      tags: ["instant-trade"],
      summary: "Assets that can be sold, with their limits, margins and current reference price",
      description: `Works without a token; a token that is sent must be valid. The list may be up to ${ASSETS_TTL_MS / 1000} s old.`,
      security: [{}, { bearer: [] }],
      middleware: optionalAuth(deps.auth),
      responses: { 200: jsonContent(AssetListSchema, "The asset registry"), ...errorResponses(401, 503) },
    }),
    async (c) => c.body(await assetsBody(c), 200, { "content-type": "application/json" }),
  );
}
