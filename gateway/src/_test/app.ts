import { createLogger, createRegistry, type Logger, type Registry } from "@ponte/common";
import { freePort } from "@ponte/common/testing";
import { createApp } from "../app.js";
import type { GatewayConfig } from "../config.js";
import { createCoordinatorClient, type Coordinator } from "../coordinator/index.js";
import type { App } from "../routes/common.js";
import { testConfig } from "./auth.js";

export interface TestApp {
  app: App;
  config: GatewayConfig;
  registry: Registry;
  close(): void;
}

/** Well-formed ids of trades and quotes that exist nowhere. */
export const TRADE_ID = "trd_06h2d176hda7fc46fchwk6mza8";
export const QUOTE_ID = "qte_06h2d176hjnn0qayzpmjs9vyew";

/**
 * The app in-process, its gRPC client pointed at a port where nothing listens: any call it makes
 * answers 503 COORDINATOR_UNAVAILABLE. So an answer other than that 503 was given before any call.
 * (Everything that needs a coordinator answering runs against the real one in test/src/e2e.)
 */
export async function buildAppWithoutCoordinator(env: Record<string, string> = {}, opts: { logger?: Logger } = {}): Promise<TestApp> {
  const config = testConfig({ COORDINATOR_DEADLINE_MS: "2000", READY_DEADLINE_MS: "500", ...env });
  const logger = opts.logger ?? createLogger({ name: "gateway-test", level: "silent" });
  const registry = createRegistry("gateway");
  const coordinator = createCoordinatorClient({
    url: `127.0.0.1:${await freePort()}`,
    deadlineMs: config.COORDINATOR_DEADLINE_MS,
    logger,
    registry,
  });
  return { app: createApp({ config, logger, registry, coordinator }), config, registry, close: () => coordinator.close() };
}

export interface ErrorJson {
  error: { code: string; message: string; details: Record<string, unknown> };
}

export const isErrorShape = (b: unknown): b is ErrorJson => {
  if (typeof b !== "object" || b === null || !("error" in b)) return false;
  const e = (b as { error: unknown }).error;
  if (typeof e !== "object" || e === null) return false;
  const { code, message, details } = e as Record<string, unknown>;
  return (
    typeof code === "string" &&
    typeof message === "string" &&
    typeof details === "object" &&
    details !== null &&
    !Array.isArray(details) &&
    Object.keys(e).length === 3
  );
};

/** POSTs/PUTs a body: a string goes as is, anything else as JSON. */
export function send(
  app: App,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
  const body = opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  return Promise.resolve(app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }));
}

export async function errorOf(res: Response): Promise<ErrorJson["error"]> {
  const body: unknown = await res.json();
  if (!isErrorShape(body)) throw new Error(`not the error shape: ${JSON.stringify(body)}`);
  return body.error;
}
