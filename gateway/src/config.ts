import { createPublicKey } from "node:crypto";
import { env, parseConfig, z } from "@ponte/common";

// An empty variable (`JWT_PUBLIC_KEY=` in a .env file) means "not set", not "set to nothing".
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === "" ? undefined : v), schema.optional());

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** A PEM as one line with literal "\n" (how env files and secret stores often carry it) or as is. */
const pem = z
  .string()
  .transform((s) => s.replace(/\\n/g, "\n").trim())
  .refine(
    (s) => {
      try {
        return createPublicKey(s).asymmetricKeyType === "rsa";
      } catch {
        return false;
      }
    },
    { message: "must be an RSA public key in PEM (SPKI) form" },
  );

export const GatewayEnv = z
  .object({
    PORT: env.port(8080),
    HOST: z.string().min(1).default("0.0.0.0"),
    /** host:port of the coordinator's TradeService (plaintext gRPC inside the cluster). */
    COORDINATOR_GRPC_URL: z.string().min(1).default("127.0.0.1:50051"),
    /** Deadline of every call to the coordinator. */
    COORDINATOR_DEADLINE_MS: env.int(5_000, 1),
    /** Deadline of the readiness probe's Ping: short, so /readyz answers before the prober gives up. */
    READY_DEADLINE_MS: env.int(1_000, 1),
    // Secrets have no defaults. HS256 needs JWT_SECRET; RS256 needs JWT_PUBLIC_KEY; either or both.
    JWT_SECRET: optional(z.string().min(32, "must be at least 32 characters")),
    JWT_PUBLIC_KEY: optional(pem),
    JWT_ISSUER: optional(z.string().min(1)),
    JWT_AUDIENCE: optional(z.string().min(1)),
    JWT_CLOCK_TOLERANCE_S: env.int(5, 0),
    /** Verified tokens kept (until their exp) so a user's next calls skip the signature check; 0: none. */
    JWT_CACHE_SIZE: env.int(10_000, 0),
    LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
    BODY_LIMIT_BYTES: env.int(16 * 1024, 1),
    /** Live trade streams (SSE) one gateway process holds at once; the next one is 503. */
    SSE_MAX_STREAMS: env.int(1_000, 1),
    /** How often each stream asks the coordinator for its trade (the version says whether it changed). */
    SSE_POLL_MS: env.int(500, 10),
    /** A comment line after this long without an event, so proxies keep an idle stream open. */
    SSE_KEEPALIVE_MS: env.int(15_000, 10),
  })
  .refine((c) => c.JWT_SECRET !== undefined || c.JWT_PUBLIC_KEY !== undefined, {
    message: "set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256)",
    path: ["JWT_SECRET"],
  });

export type GatewayConfig = z.output<typeof GatewayEnv>;

/** Parses the environment once (in main.ts); throws ConfigError naming every bad variable. */
export const loadConfig = (input: Record<string, string | undefined> = process.env): GatewayConfig =>
  parseConfig(GatewayEnv, input);
