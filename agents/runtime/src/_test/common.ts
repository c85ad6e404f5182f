import { createLogger, createRegistry, createShutdown } from "@ponte/common";
import type { AgentCommon } from "../agent/index.js";
import { defaultAgentId, type RuntimeConfig } from "../config/index.js";

export function testCommon(o: { coordinatorAddress: string; agentId?: string } & Partial<RuntimeConfig>): AgentCommon {
  const logger = createLogger({ name: "agent-test", level: process.env.PONTE_TEST_LOG ?? "silent" });
  const config: RuntimeConfig = {
    coordinatorTls: false,
    coordinatorDeadlineMs: 2_000,
    agentId: defaultAgentId(),
    metricsHost: "127.0.0.1",
    metricsPort: 0,
    poolCheckIntervalMs: 60_000,
    logLevel: "silent",
    ...o,
  };
  return { config, logger, metrics: createRegistry("agent-test"), shutdown: createShutdown(logger) };
}

/** A derivation stand-in: distinct, recognisable addresses. */
export const fakeDerive = (index: number) => ({ index, address: `addr-${index}`, path: `m/0/${index}` });

/** Resolves once signal aborts (at once when it already has). */
export const untilAborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
