import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { env, parseConfig, z } from "@ponte/common";

// An empty variable (`AGENT_ID=` in a .env file) means "not set".
const blankAsUnset = (v: unknown) => (v === "" ? undefined : v);

const RuntimeEnv = z.object({
  COORDINATOR_ADDR: z
    .string({ error: "is required (host:port of the coordinator's gRPC server)" })
    .regex(/^[A-Za-z0-9._-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, { error: "must be host:port, e.g. 127.0.0.1:50051" }),
  COORDINATOR_TLS: env.bool(false),
  COORDINATOR_DEADLINE_MS: env.int(10_000, 100),
  AGENT_ID: z.preprocess(blankAsUnset, z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).optional()),
  METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  METRICS_PORT: env.port(9464),
  POOL_CHECK_INTERVAL_MS: env.int(30_000, 100),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

export interface RuntimeConfig {
  coordinatorAddress: string;
  coordinatorTls: boolean;
  coordinatorDeadlineMs: number;
  /** Unique per process so the coordinator can tell a restarted agent from its old self. */
  agentId: string;
  metricsHost: string;
  /** 0 picks a free port (tests). */
  metricsPort: number;
  poolCheckIntervalMs: number;
  logLevel: string;
}

export const defaultAgentId = (): string => `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

/** The runtime's part of the environment; the chain family adds its own. */
export function loadRuntimeConfig(input: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const e = parseConfig(RuntimeEnv, input);
  return {
    coordinatorAddress: e.COORDINATOR_ADDR,
    coordinatorTls: e.COORDINATOR_TLS,
    coordinatorDeadlineMs: e.COORDINATOR_DEADLINE_MS,
    agentId: e.AGENT_ID ?? defaultAgentId(),
    metricsHost: e.METRICS_HOST,
    metricsPort: e.METRICS_PORT,
    poolCheckIntervalMs: e.POOL_CHECK_INTERVAL_MS,
    logLevel: e.LOG_LEVEL,
  };
}
