import { createRoute, z } from "@hono/zod-openapi";
import { PonteError, type Registry } from "@ponte/common";
import { errorBody } from "../errors.js";
import { ErrorSchema } from "../schemas.js";
import { callOpts, jsonContent, type App, type RouteDeps } from "./common.js";

export interface SystemDeps extends RouteDeps {
  registry: Registry;
  readyDeadlineMs: number;
  isShuttingDown: () => boolean;
}

const Health = z.object({ status: z.literal("ok") }).openapi("Health");
const Ready = z.object({ status: z.literal("ready") }).openapi("Ready");
const NotReady = z
  .object({ status: z.enum(["not_ready", "shutting_down"]), error: ErrorSchema.shape.error })
  .openapi("NotReady");

export function registerSystemRoutes(app: App, deps: SystemDeps): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      tags: ["system"],
      summary: "Liveness: the process answers",
      responses: { 200: jsonContent(Health, "Alive") },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/readyz",
      tags: ["system"],
      summary: "Readiness: the coordinator answers a Ping (and its database is up)",
      responses: { 200: jsonContent(Ready, "Ready for traffic"), 503: jsonContent(NotReady, "Not ready") },
    }),
    async (c) => {
      // Draining: let the load balancer move traffic away before the listener closes.
      if (deps.isShuttingDown()) {
        return c.json({ status: "shutting_down" as const, ...errorBody("UNAVAILABLE", "the gateway is shutting down") }, 503);
      }
      try {
        const { databaseOk } = await deps.coordinator.ping({ ...callOpts(c), deadlineMs: deps.readyDeadlineMs });
        if (!databaseOk) {
          return c.json({ status: "not_ready" as const, ...errorBody("UNAVAILABLE", "the coordinator cannot reach its database") }, 503);
        }
        return c.json({ status: "ready" as const }, 200);
      } catch (err) {
        if (!(err instanceof PonteError)) throw err;
        deps.logger.warn({ code: err.code, request_id: c.get("requestId") }, "Readiness check failed");
        return c.json({ status: "not_ready" as const, ...errorBody(err.code, err.message, err.details) }, 503);
      }
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      tags: ["system"],
      summary: "Prometheus metrics",
      responses: { 200: { description: "Prometheus text exposition", content: { "text/plain": { schema: z.string() } } } },
    }),
    async (c) => c.text(await deps.registry.metrics(), 200, { "content-type": deps.registry.contentType }),
  );
}
