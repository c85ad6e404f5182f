import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, Next } from "hono";
import { PonteError, type Logger, type Registry } from "@ponte/common";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { createAuthenticator } from "./auth/index.js";
import type { GatewayConfig } from "./config.js";
import type { Coordinator } from "./coordinator/index.js";
import { errorBody, toHttpError, validationError } from "./errors.js";
import { createHttpMetrics, methodLabel, routeLabel } from "./metrics.js";
import { registerAssetRoutes } from "./routes/assets.js";
import { registerCustodialRoutes } from "./routes/custodial.js";
import type { App, AppEnv } from "./routes/common.js";
import { registerPixKeyRoutes } from "./routes/pix-key.js";
import { registerQuoteRoutes } from "./routes/quotes.js";
import { registerSystemRoutes } from "./routes/system.js";
import { registerTradeEventRoutes } from "./routes/trade-events.js";
import { registerTradeRoutes } from "./routes/trades.js";
import { registerWebRoutes } from "./routes/web.js";
import { registerWebhookRoutes, WEBHOOK_PREFIX } from "./routes/webhooks.js";

export interface AppDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: Registry;
  coordinator: Coordinator;
  /** While true, /readyz answers 503 so traffic drains before the listener closes. */
  isShuttingDown?: () => boolean;
  /** Aborts when the process stops: live event streams end so the listener can close. */
  shutdownSignal?: AbortSignal;
}

export const API_VERSION = "1.0.0";

const isWebhookPath = (path: string) => path.startsWith(WEBHOOK_PREFIX);

// Probes and scrapes arrive every few seconds; their request lines would drown the rest.
const QUIET_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * The whole HTTP API as a Hono app, with no listener: main.ts serves it, tests call app.request().
 */
export function createApp(deps: AppDeps): App {
  const { config, logger, registry, coordinator } = deps;
  const auth = createAuthenticator(config);
  const metrics = createHttpMetrics(registry);

  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.target, result.error);
    },
  });

  app.use("*", requestId({ limitLength: 128 }));

  app.use("*", async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const route = routeLabel(c);
    const status = c.res.status;
    metrics.observe({ method: methodLabel(c.req.method), route, status: String(status) }, seconds);
    const line = {
      request_id: c.get("requestId"),
      method: c.req.method,
      route,
      status,
      duration_ms: Math.round(seconds * 1000),
      user_id: c.get("principal")?.userId,
    };
    if (QUIET_ROUTES.has(route)) logger.debug(line, "Request completed");
    else logger.info(line, "Request completed");
  });

  const tooLarge = () => {
    throw new PonteError("PAYLOAD_TOO_LARGE", `the body is larger than ${config.BODY_LIMIT_BYTES} bytes`, {
      limit_bytes: config.BODY_LIMIT_BYTES,
    });
  };
  const streamedBodyLimit = bodyLimit({ maxSize: config.BODY_LIMIT_BYTES, onError: tooLarge });
  // A declared Content-Length is checked from the header alone, as Hono's bodyLimit does, but
  // without touching c.req.raw.body: that getter makes @hono/node-server build undici's Request
  // and a web stream of the body, which the JSON read then goes through (738 → 551 CPU-µs per
  // quote without it, bench/README.md, B1). Node's parser reads exactly Content-Length bytes, so
  // the header is the size; a chunked body has none and is counted as it streams.
  const apiBodyLimit = (c: Context<AppEnv>, next: Next) => {
    const declared = c.req.header("content-length");
    if (declared === undefined || !/^\d+$/.test(declared) || c.req.header("transfer-encoding") !== undefined) {
      return streamedBodyLimit(c, next);
    }
    return Number(declared) > config.BODY_LIMIT_BYTES ? tooLarge() : next();
  };
  // Webhooks carry the provider's body, not ours: their route sets its own limit. No route reads
  // the body of a GET or HEAD, and the limit's check builds the WHATWG Request that
  // @hono/node-server otherwise never makes (an AbortSignal and undici's Request per call: ~9 %
  // of the gateway's CPU on GET …/assets, bench/README.md, B1).
  app.use("*", (c, next) => (isWebhookPath(c.req.path) || c.req.method === "GET" || c.req.method === "HEAD" ? next() : apiBodyLimit(c, next)));

  const routeDeps = { coordinator, auth, logger };
  registerSystemRoutes(app, {
    ...routeDeps,
    registry,
    readyDeadlineMs: config.READY_DEADLINE_MS,
    isShuttingDown: deps.isShuttingDown ?? (() => false),
  });
  // Before the trade routes: GET …/assets would otherwise also match GET …/{trade_id}.
  registerAssetRoutes(app, routeDeps);
  registerQuoteRoutes(app, routeDeps);
  registerTradeRoutes(app, routeDeps);
  registerTradeEventRoutes(app, {
    ...routeDeps,
    registry,
    maxStreams: config.SSE_MAX_STREAMS,
    pollMs: config.SSE_POLL_MS,
    keepAliveMs: config.SSE_KEEPALIVE_MS,
    clockToleranceS: config.JWT_CLOCK_TOLERANCE_S,
    shutdownSignal: deps.shutdownSignal,
  });
  registerPixKeyRoutes(app, routeDeps);
  registerCustodialRoutes(app, routeDeps);
  registerWebhookRoutes(app, routeDeps);
  registerWebRoutes(app, { logger });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "HS256 or RS256 JWT: sub = user id, role = user | admin (default user), exp required",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Ponte gateway",
      version: API_VERSION,
      description: "Instant sell: crypto in, BRL out by PIX. Errors are {\"error\":{\"code\",\"message\",\"details\"}}.",
    },
  });

  app.notFound((c) => c.json(errorBody("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`), 404));

  app.onError((err, c) => {
    const h = toHttpError(err);
    const request_id = c.get("requestId");
    if (h.level === "error") logger.error({ err, request_id, method: c.req.method, route: routeLabel(c) }, "Request failed");
    else if (h.level === "warn") logger.warn({ code: h.body.error.code, request_id, route: routeLabel(c) }, "Request failed: service unavailable");
    // A provider whose signature failed was never asked for a bearer token.
    if (h.status === 401 && !isWebhookPath(c.req.path)) c.header("WWW-Authenticate", 'Bearer realm="ponte"');
    return c.json(h.body, h.status as ContentfulStatusCode);
  });

  return app;
}
