import { createRequire } from "node:module";
import { createAgentMetrics, runAgent, type AgentCommon, type AgentHandle, type CoordinatorClient, type SystemWallet } from "@ponte/agent-runtime";
import { loadSeed, type SeedHandle } from "@ponte/agent-runtime/keys";
import { childLogger, ConfigError, retry } from "@ponte/common";
import { endpointLabel, transferSettings, type EvmConfig } from "../config/index.js";
import { createEvmFollower } from "../follow/index.js";
import { createEvmKeys, type EvmKeys } from "../keys/index.js";
import { createLogFetcher } from "../logs/index.js";
import { createHeadWatcher, type HeadWatcher } from "../rpc/heads.js";
import { createEvmRpc, RpcError, type EvmRpc } from "../rpc/index.js";
import { createBalanceMonitor, createEvmTransferExecutor, type BalanceMonitor, type BalanceReading } from "../transfer/index.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export interface EvmAgent {
  readonly handle: AgentHandle;
  readonly heads: HeadWatcher;
  readonly rpc: EvmRpc;
  readonly keys: EvmKeys;
  readonly balances: BalanceMonitor;
  stop(): Promise<void>;
}

export interface StartEvmAgentOptions {
  config: EvmConfig;
  /** The seed from loadSeed() (Vault, keystore, or env in development). */
  seed?: SeedHandle;
  /**
   * In-process tests only: a mnemonic wrapped as an env key source. Processes read the seed
   * through SEED_SOURCE (see main.ts).
   */
  mnemonic?: string;
  client?: CoordinatorClient;
  serveMetrics?: boolean;
  leaseDefaultTtlMs?: number;
  /** false: follow deposits only, take no transfer orders. */
  transfers?: boolean;
}

/** The hot wallet (always) and the cold one (when configured), as RegisterRequest carries them. */
export function systemWallets(keys: EvmKeys, config: EvmConfig): SystemWallet[] {
  const s = transferSettings(config);
  const out: SystemWallet[] = [{ kind: "hot", address: keys.hot.address, derivationPath: keys.hot.path, keyRef: keys.ref, ceiling: s.hotCeiling }];
  if (s.coldWallet) out.push({ kind: "cold", address: s.coldWallet, derivationPath: null, keyRef: null, ceiling: null });
  return out;
}

/**
 * Wires the EVM family into the runtime: node RPC (HTTP batches + ws heads), deposit-address
 * derivation, the follower, the transfer executor and the hot wallet's balance metrics. Checks
 * the node's chain id first: a URL pointing at the wrong network must stop the agent, not feed
 * the coordinator another chain's blocks (or sign for it).
 */
export async function startEvmAgent(common: AgentCommon, o: StartEvmAgentOptions): Promise<EvmAgent> {
  const { config } = o;
  const logger = childLogger(common.logger, { network: config.network });
  const seed =
    o.seed ?? (o.mnemonic !== undefined ? await loadSeed({ source: "env", variable: "(in-process mnemonic)", value: o.mnemonic }, logger) : undefined);
  if (!seed) throw new Error("startEvmAgent needs a seed");
  const keys = await createEvmKeys(seed);
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

  const heads = createHeadWatcher({ logger }, { urls: config.rpc.flatMap((r) => (r.ws ? [r.ws] : [])), metrics, network: config.network });
  const logs = createLogFetcher({ logger }, { rpc, contracts: config.tokens.map((t) => t.contract), maxRange: config.logsMaxRange, network: config.network });
  const settings = transferSettings(config);
  // The handle exists once runAgent returns; readings before that (or without the lease) are not sent.
  let reportBalances: ((r: BalanceReading) => Promise<unknown>) | undefined;
  const balances = createBalanceMonitor({ logger }, {
    rpc, address: keys.hot.address, tokens: config.tokens, metrics, intervalMs: settings.balanceIntervalMs, network: config.network,
    report: async (r) => reportBalances?.(r),
  });
  logger.info(
    {
      chain_id: config.chainId.toString(),
      endpoints: config.rpc.map((r) => endpointLabel(r.http)),
      finality: config.finality.kind === "finalized" ? "finalized" : `${config.finality.confirmations} confirmations`,
      tokens: config.tokens.map((t) => t.symbol),
      key_ref: keys.ref,
      seed_fingerprint: seed.fingerprint,
      hot_wallet: keys.hot.address,
      cold_wallet: settings.coldWallet,
      max_fee_per_gas: settings.maxFeePerGas.toString(),
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
      deriveAddress: (i) => keys.deriver.derive(i),
      createFollower: createEvmFollower({ logger }, { config, rpc, heads, logs, ownAddresses: [keys.hot.address] }),
      systemWallets: systemWallets(keys, config),
      ...(o.transfers === false
        ? {}
        : { createTransferExecutor: (t) => createEvmTransferExecutor({ logger: t.logger }, { config, rpc, keys, heads, metrics: t.metrics }) }),
    },
    { agentMetrics: metrics, client: o.client, serveMetrics: o.serveMetrics, leaseDefaultTtlMs: o.leaseDefaultTtlMs },
  );

  reportBalances = (r) => handle.reportWalletBalances(r);

  let stopped: Promise<void> | undefined;
  const agent: EvmAgent = {
    handle,
    heads,
    rpc,
    keys,
    balances,
    stop() {
      stopped ??= (async () => {
        await handle.stop();
        await balances.stop();
        await heads.stop();
        ac.abort();
        // The seed handle is the caller's when it passed one; a mnemonic wrapped here is ours.
        if (!o.seed) await seed.close();
      })();
      return stopped;
    },
  };
  common.shutdown.onShutdown("evm-agent", () => agent.stop());
  return agent;
}
