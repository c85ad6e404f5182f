import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

export { Counter, Gauge, Histogram, Registry } from "prom-client";

/** One registry per process, with Node's default metrics under the ponte_ prefix. */
export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: "ponte_" });
  return registry;
}

export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A tiny HTTP server for processes without an HTTP API of their own: /metrics, /healthz and
 * /readyz (ready() decides).
 */
export async function serveMetrics(opts: {
  registry: Registry;
  host: string;
  port: number;
  ready?: () => Promise<boolean> | boolean;
}): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === "/metrics") {
        const body = await opts.registry.metrics();
        res.writeHead(200, { "content-type": opts.registry.contentType });
        res.end(body);
      } else if (req.url === "/healthz") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"status":"ok"}');
      } else if (req.url === "/readyz") {
        const ok = opts.ready ? await opts.ready() : true;
        res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: ok ? "ready" : "not_ready" }));
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}
