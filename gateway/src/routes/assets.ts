import { createRoute } from "@hono/zod-openapi";
import { optionalAuth } from "../auth/index.js";
import { AssetListSchema } from "../schemas.js";
import { callOpts, errorResponses, jsonContent, type App, type RouteDeps } from "./common.js";

export function registerAssetRoutes(app: App, deps: RouteDeps): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/instant-trade/assets",
      tags: ["instant-trade"],
      summary: "Assets that can be sold, with their limits, margins and current reference price",
      description: "Works without a token; a token that is sent must be valid.",
      security: [{}, { bearer: [] }],
      middleware: optionalAuth(deps.auth),
      responses: { 200: jsonContent(AssetListSchema, "The asset registry"), ...errorResponses(401, 503) },
    }),
    async (c) => c.json({ assets: await deps.coordinator.listAssets(callOpts(c)) }, 200),
  );
}
