import type { AgentCommon, RuntimeConfig } from "@ponte/agent-runtime";
import { createRegistry, createShutdown } from "@ponte/common";
import { pino } from "pino";
import { startEvmAgent, type EvmAgent } from "../agent/index.js";
import type { EvmConfig, TokenConfig } from "../config/index.js";
import type { Anvil } from "./anvil.js";
import { AGENT_MNEMONIC } from "./anvil.js";

export function anvilConfig(anvil: Anvil, tokens: TokenConfig[], o: Partial<EvmConfig> = {}): EvmConfig {
  return {
    network: "anvil",
    chainId: 31337n,
    rpc: [{ http: anvil.http, ws: anvil.ws }],
    finality: { kind: "confirmations", confirmations: 3 },
    tokens,
    startHeight: 0n,
    batchSize: 50,
    maxInFlight: 4,
    rpcBatchSize: 20,
    logsMaxRange: 1_000,
    pollIntervalMs: 200,
    rpcTimeoutMs: 3_000,
    ...o,
  };
}

export interface TestAgent extends EvmAgent {
  common: AgentCommon;
  /** The agent's log lines, parsed: what it reported, as it says. */
  logs: Record<string, unknown>[];
}

export async function startTestAgent(coordinatorAddress: string, config: EvmConfig, o: { agentId?: string; serveMetrics?: boolean } = {}): Promise<TestAgent> {
  const logs: Record<string, unknown>[] = [];
  const echo = !!process.env.PONTE_TEST_LOG;
  const logger = pino(
    { name: "agent-evm-test", level: "info" },
    {
      write(line: string) {
        logs.push(JSON.parse(line) as Record<string, unknown>);
        if (echo) process.stderr.write(`[agent] ${line}`);
      },
    },
  );
  const runtime: RuntimeConfig = {
    coordinatorAddress,
    coordinatorTls: false,
    coordinatorDeadlineMs: 2_000,
    agentId: o.agentId ?? `agent-${Math.random().toString(36).slice(2, 8)}`,
    metricsHost: "127.0.0.1",
    metricsPort: 0,
    poolCheckIntervalMs: 60_000,
    logLevel: "info",
  };
  const common: AgentCommon = { config: runtime, logger, metrics: createRegistry("agent-evm-test"), shutdown: createShutdown(logger) };
  // Deposits only: these tests follow the chain; transfer orders (sweeps, gas top-ups) would put
  // transactions of their own on it.
  const agent = await startEvmAgent(common, { config, mnemonic: AGENT_MNEMONIC, serveMetrics: o.serveMetrics ?? false, transfers: false });
  return Object.assign(agent, { common, logs });
}

/** How many times the agent logged a deposit as reported (acknowledged by the coordinator). */
export const timesReported = (agent: { logs: Record<string, unknown>[] }, txRef: string): number =>
  agent.logs.filter((l) => l.msg === "Deposit reported" && l.tx_ref === txRef).length;
