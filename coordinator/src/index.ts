export { startCoordinator, type Coordinator } from "./app.js";
export { loadConfig, type CoordinatorConfig } from "./config.js";
export { migrate, migrationsFingerprint, createSql, type Sql } from "./db/index.js";
export { TRADE_STATUSES, allowedTransitions, canTransition, type TradeStatus } from "./trade/states.js";
