import { Counter, Histogram, LATENCY_BUCKETS, type Registry } from "@ponte/common";
import type { Context } from "hono";
import { matchedRoutes } from "hono/route";

const REQUESTS = "ponte_gateway_http_requests_total";
const DURATION = "ponte_gateway_http_request_duration_seconds";
const LABELS = ["method", "route", "status"] as const;
type Label = (typeof LABELS)[number];

export interface HttpMetrics {
  observe(labels: Record<Label, string>, seconds: number): void;
}

/** Reuses metrics already in the registry, so two apps on one registry (tests) do not collide. */
export function createHttpMetrics(registry: Registry): HttpMetrics {
  const requests =
    (registry.getSingleMetric(REQUESTS) as Counter<Label> | undefined) ??
    new Counter({ name: REQUESTS, help: "HTTP requests answered, by method, route template and status", labelNames: LABELS, registers: [registry] });
  const duration =
    (registry.getSingleMetric(DURATION) as Histogram<Label> | undefined) ??
    new Histogram({
      name: DURATION,
      help: "HTTP request latency, by method, route template and status",
      labelNames: LABELS,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
  return {
    observe(labels, seconds) {
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
  };
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Labels stay bounded: an odd method is OTHER, a path no route matched is "unmatched". */
export const methodLabel = (m: string): string => (METHODS.has(m) ? m : "OTHER");

const isGlobal = (path: string) => path === "*" || path === "/*";

/**
 * The route template that answered (never the raw path). When a global middleware answered
 * (413 before routing finished) the first specific route that matched names the request.
 */
export function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  const current = routes[c.req.routeIndex];
  if (current && !isGlobal(current.path)) return current.path;
  return routes.find((r) => !isGlobal(r.path))?.path ?? "unmatched";
}
