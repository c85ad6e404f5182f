export { createApp, API_VERSION, type AppDeps } from "./app.js";
export { loadConfig, GatewayEnv, type GatewayConfig } from "./config.js";
export {
  createCoordinatorClient,
  type CallOpts,
  type Coordinator,
  type CoordinatorClientOptions,
  type QuoteAmount,
} from "./coordinator/index.js";
export { createAuthenticator, type Authenticator, type Principal, type Role } from "./auth/index.js";
export type { App } from "./routes/common.js";
export type { AssetJson, AuditLogJson, PixKeyJson, QuoteJson, TradeJson, TradePageJson, WebhookAckJson } from "./schemas.js";
export type { ErrorBody } from "./errors.js";
export { serveApp, type RunningServer } from "./server.js";
