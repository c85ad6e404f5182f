// The Stark Bank stand-in as its own process. Prints one JSON line
// {"msg":"Stark Bank stand-in listening","port":…,"url":…} on stdout once it accepts requests.
import { createLogger, env, installSignalHandlers, createShutdown, parseConfig, z } from "@ponte/common";
import { startStarkbankStandin } from "./index.js";

const Env = z.object({
  PORT: env.port(0),
  HOST: z.string().default("127.0.0.1"),
  /** A project to accept from the start (more via POST /_admin/projects). */
  STANDIN_PROJECT_ID: z.string().regex(/^\d+$/).optional(),
  STANDIN_PROJECT_PUBLIC_KEY: z.string().optional(),
  STANDIN_WEBHOOK_URL: env.url().optional(),
  STANDIN_WORKSPACE_ID: z.string().regex(/^\d+$/).optional(),
  /** The webhook signing key; a fresh one when unset. */
  STANDIN_SIGNING_KEY: z.string().optional(),
  STANDIN_PROCESSING_DELAY_MS: env.int(50),
  STANDIN_SETTLE_DELAY_MS: env.int(100),
  STANDIN_AUTO_ADVANCE: env.bool(true),
  STANDIN_ACCESS_TIME_WINDOW_S: env.int(300, 1),
  STANDIN_WEBHOOK_ATTEMPTS: env.int(6, 1),
  STANDIN_WEBHOOK_RETRY_BASE_MS: env.int(100),
}).refine((c) => !c.STANDIN_PROJECT_ID === !c.STANDIN_PROJECT_PUBLIC_KEY, {
  message: "STANDIN_PROJECT_ID and STANDIN_PROJECT_PUBLIC_KEY go together",
});

const c = parseConfig(Env, process.env);
const pem = (s: string) => s.replace(/\\n/g, "\n");
const logger = createLogger({ name: "starkbank-standin" });
const standin = await startStarkbankStandin({
  port: c.PORT,
  host: c.HOST,
  logger,
  ...(c.STANDIN_PROJECT_ID && c.STANDIN_PROJECT_PUBLIC_KEY
    ? { projects: [{ id: c.STANDIN_PROJECT_ID, publicKeyPem: pem(c.STANDIN_PROJECT_PUBLIC_KEY) }] }
    : {}),
  ...(c.STANDIN_WEBHOOK_URL ? { webhookUrl: c.STANDIN_WEBHOOK_URL } : {}),
  ...(c.STANDIN_WORKSPACE_ID ? { workspaceId: c.STANDIN_WORKSPACE_ID } : {}),
  ...(c.STANDIN_SIGNING_KEY ? { signingKeyPem: pem(c.STANDIN_SIGNING_KEY) } : {}),
  processingDelayMs: c.STANDIN_PROCESSING_DELAY_MS,
  settleDelayMs: c.STANDIN_SETTLE_DELAY_MS,
  autoAdvance: c.STANDIN_AUTO_ADVANCE,
  accessTimeWindowSec: c.STANDIN_ACCESS_TIME_WINDOW_S,
  webhookAttempts: c.STANDIN_WEBHOOK_ATTEMPTS,
  webhookRetryBaseMs: c.STANDIN_WEBHOOK_RETRY_BASE_MS,
});
logger.info({ port: standin.port, url: standin.url }, "Stark Bank stand-in listening");

const shutdown = createShutdown(logger);
shutdown.onShutdown("http", () => standin.close());
installSignalHandlers(shutdown);
