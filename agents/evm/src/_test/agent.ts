import type { AgentCommon, RuntimeConfig } from "@ponte/agent-runtime";
import type { FakeCoordinator } from "@ponte/agent-runtime/testing";
import { createRegistry, createShutdown } from "@ponte/common";
import { startEvmAgent, type EvmAgent } from "../agent/index.js";
import type { EvmConfig, TokenConfig } from "../config/index.js";
import type { Anvil } from "./anvil.js";
import { AGENT_MNEMONIC } from "./anvil.js";
import { silentLogger } from "./rpc.js";

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
}

export async function startTestAgent(fake: FakeCoordinator, config: EvmConfig, o: { agentId?: string; serveMetrics?: boolean } = {}): Promise<TestAgent> {
  const logger = silentLogger();
  const runtime: RuntimeConfig = {
    coordinatorAddress: fake.address,
    coordinatorTls: false,
    coordinatorDeadlineMs: 2_000,
    agentId: o.agentId ?? `agent-${Math.random().toString(36).slice(2, 8)}`,
    metricsHost: "127.0.0.1",
    metricsPort: 0,
    poolCheckIntervalMs: 60_000,
    logLevel: "silent",
  };
  const common: AgentCommon = { config: runtime, logger, metrics: createRegistry("agent-evm-test"), shutdown: createShutdown(logger) };
  const agent = await startEvmAgent(common, { config, mnemonic: AGENT_MNEMONIC, serveMetrics: o.serveMetrics ?? false });
  return Object.assign(agent, { common });
}
