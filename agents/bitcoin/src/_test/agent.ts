import type { AgentCommon, RuntimeConfig } from "@ponte/agent-runtime";
import { createRegistry, createShutdown } from "@ponte/common";
import { pino } from "pino";
import { startUtxoAgent, type UtxoAgent } from "../agent/index.js";
import { CHAINS, type UtxoConfig } from "../config/index.js";
import { RPC_PASSWORD, RPC_USER, type Litecoind } from "./litecoind.js";

/** The agent's mnemonic in tests (its deposit addresses are not the node wallet's). */
export const AGENT_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

export function regtestConfig(node: Litecoind, o: Partial<UtxoConfig> = {}): UtxoConfig {
  return {
    network: "litecoin-regtest",
    chain: CHAINS["litecoin-regtest"],
    rpc: { url: node.url, auth: { kind: "password", user: RPC_USER, password: RPC_PASSWORD } },
    restUrl: null,
    confirmations: 6,
    startHeight: 0n,
    batchSize: 50,
    rpcBatchSize: 10,
    maxInFlight: 4,
    pollIntervalMs: 100,
    mempoolIntervalMs: 100,
    rpcTimeoutMs: 5_000,
    reorgWindow: 50,
    acceptScripts: ["p2wpkh"],
    fees: { confTarget: 2, floorSatVb: 1n, fallbackSatVb: 10n, maxSatVb: 1_000n },
    dustLimit: 546n,
    replaceAfterBlocks: 3,
    coldWallet: null,
    hotCeiling: null,
    balanceIntervalMs: 30_000,
    ...o,
  };
}

export interface TestAgent extends UtxoAgent {
  common: AgentCommon;
  logs: Record<string, unknown>[];
}

export async function startTestAgent(coordinatorAddress: string, config: UtxoConfig, o: { agentId?: string; transfers?: boolean } = {}): Promise<TestAgent> {
  const logs: Record<string, unknown>[] = [];
  const echo = !!process.env.PONTE_TEST_LOG;
  const logger = pino(
    { name: "agent-bitcoin-test", level: "info" },
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
  const common: AgentCommon = { config: runtime, logger, metrics: createRegistry("agent-bitcoin-test"), shutdown: createShutdown(logger) };
  const agent = await startUtxoAgent(common, { config, mnemonic: AGENT_MNEMONIC, serveMetrics: false, transfers: o.transfers ?? false });
  return Object.assign(agent, { common, logs });
}

export const timesReported = (agent: { logs: Record<string, unknown>[] }, txRef: string): number =>
  agent.logs.filter((l) => l.msg === "Deposit reported" && l.tx_ref === txRef).length;
