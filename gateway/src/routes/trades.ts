import { createRoute } from "@hono/zod-openapi";
import { isQuoteId, PonteError } from "@ponte/common";
import { principalOf, requireAuth, type Principal } from "../auth/index.js";
import { requestHash } from "../idempotency.js";
import {
  AdminActionRequest,
  AuditLogSchema,
  CancelRequest,
  CreateTradeRequest,
  HistoryQuery,
  IdempotencyHeaders,
  TradeIdParams,
  TradePageSchema,
  TradeSchema,
} from "../schemas.js";
import { bearer, callOpts, errorResponses, jsonBody, jsonContent, type App, type RouteDeps } from "./common.js";

const BASE = "/api/v1/instant-trade";
const DEFAULT_PAGE_SIZE = 20;

/** Admins read any trade (the coordinator takes an empty user id for that); users only theirs. */
const readerId = (p: Principal): string => (p.role === "admin" ? "" : p.userId);

export function registerTradeRoutes(app: App, deps: RouteDeps): void {
  const { coordinator, auth } = deps;
  const user = requireAuth(auth);
  const admin = requireAuth(auth, { role: "admin" });

  app.openapi(
    createRoute({
      method: "post",
      path: `${BASE}/create`,
      tags: ["instant-trade"],
      summary: "Create a trade from a quote; answers the deposit address",
      description:
        "Idempotent by the Idempotency-Key header: the same key with the same body answers the same trade; " +
        "the same key with another body is 409 IDEMPOTENCY_KEY_REUSED.",
      security: bearer,
      middleware: user,
      request: { headers: IdempotencyHeaders, body: jsonBody(CreateTradeRequest) },
      responses: { 201: jsonContent(TradeSchema, "The trade (also for a replay of the same request)"), ...errorResponses(400, 401, 404, 409, 413, 422, 503) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      if (!isQuoteId(body.quote_id)) {
        throw new PonteError("INVALID_ID", "quote_id is not a quote id", { fields: [{ field: "quote_id", in: "body", message: "malformed id" }] });
      }
      const trade = await coordinator.createTrade(
        {
          userId: principalOf(c).userId,
          quoteId: body.quote_id,
          refundAddress: body.refund_address ?? "",
          source: body.source ?? "deposit",
          idempotencyKey: c.req.valid("header")["Idempotency-Key"],
          requestHash: requestHash(body),
        },
        callOpts(c),
      );
      // The coordinator does not yet say whether this was a replay, so every success is a 201.
      return c.json(trade, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/history/my-trades`,
      tags: ["instant-trade"],
      summary: "The caller's trades, newest first, by cursor",
      security: bearer,
      middleware: user,
      request: { query: HistoryQuery },
      responses: { 200: jsonContent(TradePageSchema, "One page; next_cursor is null on the last"), ...errorResponses(401, 422, 503) },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const page = await coordinator.listTrades(
        { userId: principalOf(c).userId, limit: q.limit ?? DEFAULT_PAGE_SIZE, cursor: q.cursor ?? "", status: q.status ?? "" },
        callOpts(c),
      );
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/{trade_id}`,
      tags: ["instant-trade"],
      summary: "One trade (the caller's own; admins any)",
      security: bearer,
      middleware: user,
      request: { params: TradeIdParams },
      responses: { 200: jsonContent(TradeSchema, "The trade"), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { trade_id } = c.req.valid("param");
      return c.json(await coordinator.getTrade({ tradeId: trade_id, userId: readerId(principalOf(c)) }, callOpts(c)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: `${BASE}/{trade_id}/cancel`,
      tags: ["instant-trade"],
      summary: "Cancel a trade that is still waiting for its deposit",
      security: bearer,
      middleware: user,
      request: { params: TradeIdParams, body: jsonBody(CancelRequest, false) },
      responses: { 200: jsonContent(TradeSchema, "The cancelled trade"), ...errorResponses(400, 401, 404, 409, 413, 422, 503) },
    }),
    async (c) => {
      const { trade_id } = c.req.valid("param");
      const p = principalOf(c);
      const trade = await coordinator.cancelTrade(
        { tradeId: trade_id, userId: p.userId, actorRole: p.role, reason: c.req.valid("json").reason ?? "" },
        callOpts(c),
      );
      return c.json(trade, 200);
    },
  );

  for (const action of ["confirm-payment", "complete"] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `${BASE}/{trade_id}/${action}`,
        tags: ["admin"],
        summary:
          action === "confirm-payment"
            ? "Admin: mark the deposit as confirmed (a transition with the admin as actor)"
            : "Admin: mark the trade completed (a transition with the admin as actor)",
        security: bearer,
        middleware: admin,
        request: { params: TradeIdParams, body: jsonBody(AdminActionRequest) },
        responses: { 200: jsonContent(TradeSchema, "The trade after the transition"), ...errorResponses(400, 401, 403, 404, 409, 413, 422, 503) },
      }),
      async (c) => {
        const { trade_id } = c.req.valid("param");
        const req = { tradeId: trade_id, adminId: principalOf(c).userId, reason: c.req.valid("json").reason };
        const trade =
          action === "confirm-payment"
            ? await coordinator.adminConfirmPayment(req, callOpts(c))
            : await coordinator.adminComplete(req, callOpts(c));
        return c.json(trade, 200);
      },
    );
  }

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/{trade_id}/audit-log`,
      tags: ["instant-trade"],
      summary: "Every transition of a trade, oldest first",
      security: bearer,
      middleware: user,
      request: { params: TradeIdParams },
      responses: { 200: jsonContent(AuditLogSchema, "The audit log"), ...errorResponses(400, 401, 404, 503) },
    }),
    async (c) => {
      const { trade_id } = c.req.valid("param");
      return c.json(await coordinator.getAuditLog({ tradeId: trade_id, userId: readerId(principalOf(c)) }, callOpts(c)), 200);
    },
  );
}
