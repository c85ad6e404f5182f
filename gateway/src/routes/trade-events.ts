import { createRoute, z } from "@hono/zod-openapi";
import { Counter, delay, Gauge, PonteError, type Registry, type TradeStatus } from "@ponte/common";
import type { MiddlewareHandler } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import { principalOf, type Authenticator, type AuthVariables } from "../auth/index.js";
import { toHttpError } from "../errors.js";
import { TradeIdParams, type TradeJson } from "../schemas.js";
import { bearer, callOpts, errorResponses, type App, type RouteDeps } from "./common.js";

export interface TradeEventDeps extends RouteDeps {
  registry: Registry;
  maxStreams: number;
  pollMs: number;
  keepAliveMs: number;
  clockToleranceS: number;
  /** Aborts at shutdown: open streams end so the listener can close (clients reconnect elsewhere). */
  shutdownSignal?: AbortSignal;
}

export const TRADE_EVENTS_PATH = "/api/v1/instant-trade/{trade_id}/events";

/** Statuses a trade never leaves: the stream sends the last one and ends. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set<TradeStatus>(["COMPLETED", "REFUNDED", "EXPIRED", "CANCELLED"]);

const STREAMS = "ponte_gateway_sse_streams";
const REFUSED = "ponte_gateway_sse_streams_refused_total";

/** Versions are small positive integers; anything else in Last-Event-ID is ignored (a fresh start). */
const parseLastEventId = (v: string | undefined): number | undefined =>
  v !== undefined && /^\d{1,15}$/.test(v.trim()) ? Number(v.trim()) : undefined;

const EventsQuery = z.object({
  access_token: z
    .string()
    .optional()
    .openapi({
      description:
        "The bearer token, for clients that cannot set headers (a browser's EventSource). Only on this route; " +
        "use the Authorization header where you can. Never both.",
    }),
});

const EventsHeaders = z.object({
  "Last-Event-ID": z
    .string()
    .optional()
    .openapi({
      param: { name: "Last-Event-ID", in: "header" },
      description: "The id (trade version) of the last event received; a reconnecting EventSource sends it. That version is not sent again.",
      example: "3",
    }),
});

const STREAM_DESCRIPTION = [
  "Server-Sent Events for one trade (the caller's own; admins any). The gateway polls the coordinator",
  "and sends an event whenever the trade's version changes:",
  "",
  "- `event: trade`, `id: <version>`, `data: <the trade as GET /{trade_id} answers it>` — on connect, then on every change;",
  "- `: keep-alive` comment lines after 15 s (SSE_KEEPALIVE_MS) without an event;",
  "- `event: error`, `data: {\"error\":{…}}` when the coordinator cannot be reached or the token expires; the stream then ends;",
  "- after a trade in a final status (COMPLETED, REFUNDED, EXPIRED, CANCELLED) the stream ends.",
  "",
  "EventSource cannot set headers, so the token may come as `?access_token=<jwt>` on this route only.",
  "Reconnecting with `Last-Event-ID` skips the version already seen; when that was the trade's final",
  "state the answer is 204 (which tells an EventSource to stop reconnecting).",
].join("\n");

/** Auth for the stream: the Authorization header, or ?access_token= where headers cannot be set. */
function streamAuth(auth: Authenticator): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header("authorization");
    const query = c.req.query("access_token");
    // RFC 6750 §2: one method per request; two tokens would leave which one counts ambiguous.
    if (header !== undefined && query !== undefined) {
      throw new PonteError("UNAUTHENTICATED", "send the token in the Authorization header or in access_token, not both");
    }
    c.set("principal", header !== undefined ? await auth.verify(header) : await auth.verifyToken(query));
    await next();
  };
}

export function registerTradeEventRoutes(app: App, deps: TradeEventDeps): void {
  const { coordinator, logger, registry } = deps;
  const streams =
    (registry.getSingleMetric(STREAMS) as Gauge | undefined) ??
    new Gauge({ name: STREAMS, help: "Live trade event streams (SSE) this gateway holds open", registers: [registry] });
  const refused =
    (registry.getSingleMetric(REFUSED) as Counter | undefined) ??
    new Counter({ name: REFUSED, help: "Trade event streams refused because SSE_MAX_STREAMS were open", registers: [registry] });
  // Per process (one app per process): the bound protects this process's sockets and the coordinator.
  let open = 0;
  const release = () => {
    open--;
    streams.dec();
  };

  app.openapi(
    createRoute({
      method: "get",
      path: TRADE_EVENTS_PATH,
      tags: ["instant-trade"],
      summary: "Live status of one trade as Server-Sent Events",
      description: STREAM_DESCRIPTION,
      security: bearer,
      middleware: streamAuth(deps.auth),
      request: { params: TradeIdParams, query: EventsQuery, headers: EventsHeaders },
      responses: {
        200: {
          description: "The event stream",
          content: {
            "text/event-stream": {
              schema: z.string().openapi({
                description: "`event: trade` frames whose data is a Trade (see the Trade schema)",
                example: `event: trade\ndata: {"id":"trd_…","status":"PENDING","version":1,…}\nid: 1\n\n`,
              }),
            },
          },
        },
        204: { description: "Last-Event-ID names the trade's final version: nothing more will come" },
        ...errorResponses(400, 401, 404, 503),
      },
    }),
    async (c) => {
      const { trade_id } = c.req.valid("param");
      const principal = principalOf(c);
      const readerId = principal.role === "admin" ? "" : principal.userId;
      const resumeFrom = parseLastEventId(c.req.header("last-event-id"));

      if (open >= deps.maxStreams) {
        refused.inc();
        c.header("Retry-After", "5");
        throw new PonteError("UNAVAILABLE", "this gateway holds as many live streams as it may; retry later", {
          limit: deps.maxStreams,
        });
      }
      // Held from here, so concurrent opens cannot overshoot while the first GetTrade is in flight.
      open++;
      streams.inc();
      let first: TradeJson;
      try {
        // Not found (or another user's) is a plain 404 before any stream starts.
        first = await coordinator.getTrade({ tradeId: trade_id, userId: readerId }, callOpts(c));
      } catch (err) {
        release();
        throw err;
      }
      if (FINAL_STATUSES.has(first.status) && first.version === resumeFrom) {
        release();
        return c.body(null, 204);
      }

      c.header("X-Accel-Buffering", "no"); // nginx would otherwise buffer the stream
      const requestId = c.get("requestId");
      return streamSSE(c, async (stream) => {
        try {
          await follow(stream, first, {
            resumeFrom,
            expiresAtMs: (principal.expiresAt + deps.clockToleranceS) * 1000,
            getTrade: (signal) => coordinator.getTrade({ tradeId: trade_id, userId: readerId }, { requestId, signal }),
            pollMs: deps.pollMs,
            keepAliveMs: deps.keepAliveMs,
            shutdownSignal: deps.shutdownSignal,
            onEnd: (reason, sent, err) => {
              const line = { trade_id, request_id: requestId, reason, events: sent };
              if (reason === "error" && toHttpError(err).level === "error") logger.error({ ...line, err }, "Trade event stream failed");
              else logger.debug(line, "Trade event stream ended");
            },
          });
        } finally {
          release();
        }
      });
    },
  );
}

type EndReason = "final" | "client_gone" | "shutdown" | "token_expired" | "error";

interface FollowOptions {
  resumeFrom: number | undefined;
  expiresAtMs: number;
  getTrade(signal: AbortSignal): Promise<TradeJson>;
  pollMs: number;
  keepAliveMs: number;
  shutdownSignal: AbortSignal | undefined;
  onEnd(reason: EndReason, sent: number, err?: unknown): void;
}

/**
 * Sends the trade whenever its version changes until it reaches a final status, the client leaves,
 * the token expires, the process shuts down or the coordinator fails. Never throws: a failure is
 * an `event: error` frame with the HTTP error body. One timer at a time, gone when this returns.
 */
async function follow(stream: SSEStreamingApi, first: TradeJson, o: FollowOptions): Promise<void> {
  const stop = new AbortController();
  const onShutdown = () => stop.abort();
  stream.onAbort(() => stop.abort());
  o.shutdownSignal?.addEventListener("abort", onShutdown, { once: true });
  if (o.shutdownSignal?.aborted) stop.abort();

  let lastSent = o.resumeFrom;
  let lastWrite = Date.now();
  let sent = 0;
  const send = async (trade: TradeJson) => {
    await stream.writeSSE({ event: "trade", id: String(trade.version), data: JSON.stringify(trade) });
    lastSent = trade.version;
    lastWrite = Date.now();
    sent++;
  };
  const sendError = (err: unknown) => stream.writeSSE({ event: "error", data: JSON.stringify(toHttpError(err).body) });

  let reason: EndReason = "client_gone";
  let failure: unknown;
  try {
    let trade = first;
    // Any change of version is news (versions only grow; a smaller one means a resumed id from elsewhere).
    if (trade.version !== lastSent) await send(trade);
    while (!FINAL_STATUSES.has(trade.status)) {
      await delay(o.pollMs, stop.signal);
      if (stop.signal.aborted) break;
      if (Date.now() >= o.expiresAtMs) {
        reason = "token_expired";
        await sendError(new PonteError("UNAUTHENTICATED", "the token has expired"));
        return;
      }
      try {
        trade = await o.getTrade(stop.signal);
      } catch (err) {
        if (stop.signal.aborted) break;
        reason = "error";
        failure = err;
        await sendError(err);
        return;
      }
      if (trade.version !== lastSent) await send(trade);
      else if (Date.now() - lastWrite >= o.keepAliveMs) {
        await stream.write(": keep-alive\n\n");
        lastWrite = Date.now();
      }
    }
    reason = stop.signal.aborted ? (o.shutdownSignal?.aborted ? "shutdown" : "client_gone") : "final";
  } catch (err) {
    // A bug, not the coordinator: say "internal" to the client and log it in full.
    reason = "error";
    failure = err;
    await sendError(err);
  } finally {
    o.shutdownSignal?.removeEventListener("abort", onShutdown);
    o.onEnd(reason, sent, failure);
  }
}
