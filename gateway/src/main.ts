import { ConfigError, createLogger, createRegistry, createShutdown, installSignalHandlers } from "@ponte/common";
import { createApp } from "./app.js";
import { loadConfig } from "./config.js";
import { createCoordinatorClient } from "./coordinator/index.js";
import { serveApp } from "./server.js";

const config = (() => {
  try {
    return loadConfig();
  } catch (err) {
    // A bad environment is an operator's mistake: say which variables, without a stack trace.
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
})();
const logger = createLogger({ name: "gateway", level: config.LOG_LEVEL });
const registry = createRegistry("gateway");
const shutdown = createShutdown(logger);
installSignalHandlers(shutdown);

const coordinator = createCoordinatorClient({
  url: config.COORDINATOR_GRPC_URL,
  deadlineMs: config.COORDINATOR_DEADLINE_MS,
  logger,
  registry,
});
// Registered first, so it closes last: requests still in flight reach the coordinator while draining.
shutdown.onShutdown("coordinator client", () => coordinator.close());

const app = createApp({
  config,
  logger,
  registry,
  coordinator,
  isShuttingDown: () => shutdown.isShuttingDown,
  shutdownSignal: shutdown.signal,
});
const server = await serveApp(app, { port: config.PORT, host: config.HOST });
shutdown.onShutdown("http server", () => server.close());
logger.info({ port: server.port, host: config.HOST, coordinator: config.COORDINATOR_GRPC_URL }, "Gateway listening");
