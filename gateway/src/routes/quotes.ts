import { createRoute } from "@hono/zod-openapi";
import { principalOf, requireAuth } from "../auth/index.js";
import type { QuoteAmount } from "../coordinator/index.js";
import { QuoteRequest, QuoteSchema } from "../schemas.js";
import { bearer, callOpts, errorResponses, jsonBody, jsonContent, type App, type RouteDeps } from "./common.js";

export function registerQuoteRoutes(app: App, deps: RouteDeps): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/instant-trade/quote",
      tags: ["instant-trade"],
      summary: "Price a sale, by crypto amount or by BRL amount (exactly one)",
      security: bearer,
      middleware: requireAuth(deps.auth),
      request: { body: jsonBody(QuoteRequest) },
      responses: { 200: jsonContent(QuoteSchema, "A quote, valid until expires_at"), ...errorResponses(400, 401, 413, 422, 503) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      // The schema lets exactly one of the two through.
      const amount: QuoteAmount = body.crypto_amount !== undefined ? { crypto: body.crypto_amount } : { fiat: body.fiat_amount! };
      const quote = await deps.coordinator.createQuote(
        { userId: principalOf(c).userId, symbol: body.symbol, network: body.network, amount },
        callOpts(c),
      );
      return c.json(quote, 200);
    },
  );
}
