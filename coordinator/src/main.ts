import { createLogger, installSignalHandlers } from "@ponte/common";
import { startCoordinator } from "./app.js";
import { loadConfig } from "./config.js";

const logger = createLogger({ name: "coordinator" });
try {
  const config = loadConfig();
  logger.level = config.LOG_LEVEL;
  const coordinator = await startCoordinator(config, logger);
  installSignalHandlers(coordinator.shutdown);
} catch (err) {
  logger.fatal({ err }, "Coordinator failed to start");
  process.exit(1);
}
