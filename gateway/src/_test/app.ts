import { createLogger, createRegistry, type Registry } from "@ponte/common";
import { freePort } from "@ponte/common/testing";
import { createApp } from "../app.js";
import { createCoordinatorClient, type Coordinator } from "../coordinator/index.js";
import type { App } from "../routes/common.js";
import { testConfig } from "../testing/index.js";

export interface TestApp {
  app: App;
  registry: Registry;
  coordinator: Coordinator;
  close(): void;
}

/** The app in-process, its gRPC client pointed at `url`. */
export function buildApp(url: string, env: Record<string, string> = {}): TestApp {
  const config = testConfig({ COORDINATOR_DEADLINE_MS: "2000", READY_DEADLINE_MS: "500", ...env });
  const logger = createLogger({ name: "gateway-test", level: "silent" });
  const registry = createRegistry("gateway");
  const coordinator = createCoordinatorClient({ url, deadlineMs: config.COORDINATOR_DEADLINE_MS, logger, registry });
  return { app: createApp({ config, logger, registry, coordinator }), registry, coordinator, close: () => coordinator.close() };
}

/** The app with its coordinator at a port where nothing listens: any call it makes answers 503. */
export async function buildAppWithoutCoordinator(env: Record<string, string> = {}): Promise<TestApp> {
  return buildApp(`127.0.0.1:${await freePort()}`, env);
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
