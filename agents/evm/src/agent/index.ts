import { createRequire } from "node:module";
import { createAgentMetrics, runAgent, type AgentCommon, type AgentHandle, type CoordinatorClient } from "@ponte/agent-runtime";
import { ConfigError, retry } from "@ponte/common";
import { endpointLabel, type EvmConfig } from "../config/index.js";
import { createEvmDeriver } from "../derive/index.js";
import { createEvmFollower } from "../follow/index.js";
import { createLogFetcher } from "../logs/index.js";
import { createHeadWatcher, type HeadWatcher } from "../rpc/heads.js";
import { createEvmRpc, RpcError, type EvmRpc } from "../rpc/index.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export interface EvmAgent {
  readonly handle: AgentHandle;
  readonly heads: HeadWatcher;
  readonly rpc: EvmRpc;
  stop(): Promise<void>;
}

/**
 * Wires the EVM family into the runtime: node RPC (HTTP batches + ws heads), deposit-address
 * derivation, the follower. Checks the node's chain id first: a URL pointing at the wrong
 * network must stop the agent, not feed the coordinator another chain's blocks.
 */
export async function startEvmAgent(
  common: AgentCommon,
  o: { config: EvmConfig; mnemonic: string; client?: CoordinatorClient; serveMetrics?: boolean; leaseDefaultTtlMs?: number },
): Promise<EvmAgent> {
  const { config } = o;
  const logger = common.logger.child({ network: config.network });
  const ac = new AbortController();
  const metrics = createAgentMetrics(common.metrics, config.network);
  const rpc = createEvmRpc({ logger }, {
    urls: config.rpc.map((r) => r.http),
    timeoutMs: config.rpcTimeoutMs,
    maxInFlight: config.maxInFlight,
    maxBatchSize: config.rpcBatchSize,
    metrics,
    signal: ac.signal,
  });

  const chainId = await retry(async () => BigInt(await rpc.call<string>("eth_chainId", [])), {
    name: "eth_chainId",
    logger,
    signal: common.shutdown.signal,
    attempts: Number.POSITIVE_INFINITY,
    maxMs: 10_000,
    isRetryable: (err) => !(err instanceof RpcError),
  });
  if (chainId !== config.chainId) {
    throw new ConfigError([{ field: "chain_id", message: `is ${config.chainId} but the node at ${rpc.endpoint} is on chain ${chainId}` }]);
  }

  const deriver = createEvmDeriver(o.mnemonic);
  const heads = createHeadWatcher({ logger }, { urls: config.rpc.flatMap((r) => (r.ws ? [r.ws] : [])), metrics, network: config.network });
  const logs = createLogFetcher({ logger }, { rpc, contracts: config.tokens.map((t) => t.contract), maxRange: config.logsMaxRange, network: config.network });
  logger.info(
    {
      chain_id: config.chainId.toString(),
      endpoints: config.rpc.map((r) => endpointLabel(r.http)),
      finality: config.finality.kind === "finalized" ? "finalized" : `${config.finality.confirmations} confirmations`,
      tokens: config.tokens.map((t) => t.symbol),
    },
    "EVM agent configured",
  );

  const handle = await runAgent(
    common,
    {
      network: config.network,
      family: "evm",
      chainId: config.chainId.toString(),
      version: VERSION,
      normalizeAddress: (a) => a.toLowerCase(),
      deriveAddress: (i) => deriver.derive(i),
      createFollower: createEvmFollower({ logger }, { config, rpc, heads, logs }),
    },
    { agentMetrics: metrics, client: o.client, serveMetrics: o.serveMetrics, leaseDefaultTtlMs: o.leaseDefaultTtlMs },
  );

  let stopped: Promise<void> | undefined;
  const agent: EvmAgent = {
    handle,
    heads,
    rpc,
    stop() {
      stopped ??= (async () => {
        await handle.stop();
        await heads.stop();
        ac.abort();
      })();
      return stopped;
    },
  };
  common.shutdown.onShutdown("evm-agent", () => agent.stop());
  return agent;
}
