import { createRequire } from "node:module";
import { createAgentMetrics, runAgent, type AgentCommon, type AgentHandle, type CoordinatorClient, type SystemWallet } from "@ponte/agent-runtime";
import { loadSeed, type SeedHandle } from "@ponte/agent-runtime/keys";
import { childLogger, ConfigError, delay, retry } from "@ponte/common";
import { endpointLabel, type UtxoConfig } from "../config/index.js";
import { createScriptReader } from "../script/index.js";
import { createUtxoFollower } from "../follow/index.js";
import { createUtxoKeys, type UtxoKeys } from "../keys/index.js";
import type { MempoolTracker } from "../mempool/index.js";
import { createUtxoRpc, RpcError, type UtxoRpc } from "../rpc/index.js";
import { createUtxoTransferExecutor } from "../transfer/index.js";
import { createUtxoMetrics, type UtxoMetrics } from "./metrics.js";

export * from "./metrics.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export interface UtxoAgent {
  readonly handle: AgentHandle;
  readonly rpc: UtxoRpc;
  readonly keys: UtxoKeys;
  readonly metrics: UtxoMetrics;
  /** The mempool tracker of the current lease term (tests). */
  readonly mempool: MempoolTracker | undefined;
  stop(): Promise<void>;
}

export interface StartUtxoAgentOptions {
  config: UtxoConfig;
  seed?: SeedHandle;
  /** In-process tests only: a mnemonic wrapped as an env key source. */
  mnemonic?: string;
  client?: CoordinatorClient;
  serveMetrics?: boolean;
  leaseDefaultTtlMs?: number;
  /** false: follow deposits only, take no transfer orders. */
  transfers?: boolean;
}

export function systemWallets(keys: UtxoKeys, config: UtxoConfig): SystemWallet[] {
  const out: SystemWallet[] = [{ kind: "hot", address: keys.hot.address, derivationPath: keys.hot.path, keyRef: keys.ref, ceiling: config.hotCeiling }];
  if (config.coldWallet) out.push({ kind: "cold", address: config.coldWallet, derivationPath: null, keyRef: null, ceiling: null });
  return out;
}

/**
 * Wires the UTXO family into the runtime. Checks the node first: a URL pointing at another
 * network (Bitcoin for Litecoin, mainnet for regtest) must stop the agent, not feed the
 * coordinator another chain's blocks or sign for it.
 */
export async function startUtxoAgent(common: AgentCommon, o: StartUtxoAgentOptions): Promise<UtxoAgent> {
  const { config } = o;
  const logger = childLogger(common.logger, { network: config.network });
  const seed =
    o.seed ?? (o.mnemonic !== undefined ? await loadSeed({ source: "env", variable: "(in-process mnemonic)", value: o.mnemonic }, logger) : undefined);
  if (!seed) throw new Error("startUtxoAgent needs a seed");
  const keys = await createUtxoKeys(seed, config.chain);
  const ac = new AbortController();
  const metrics = createAgentMetrics(common.metrics, config.network);
  const utxoMetrics = createUtxoMetrics(common.metrics, config.network);
  const rpc = createUtxoRpc({
    url: config.rpc.url,
    auth: config.rpc.auth,
    restUrl: config.restUrl,
    timeoutMs: config.rpcTimeoutMs,
    maxInFlight: config.maxInFlight,
    batchSize: config.rpcBatchSize,
    metrics,
    signal: ac.signal,
    logger,
  });

  const info = await retry(() => rpc.call<{ chain: string; blocks: number }>("getblockchaininfo"), {
    name: "getblockchaininfo",
    logger,
    signal: common.shutdown.signal,
    attempts: Number.POSITIVE_INFINITY,
    maxMs: 10_000,
    isRetryable: (err) => !(err instanceof RpcError),
  });
  if (info.chain !== config.chain.nodeChain) {
    throw new ConfigError([{ field: "chain", message: `is ${config.chain.name} but the node at ${rpc.endpoint} is on chain "${info.chain}"` }]);
  }
  if (config.chain.genesis) {
    const genesis = await rpc.call<string>("getblockhash", [0]);
    if (genesis !== config.chain.genesis) {
      throw new ConfigError([{ field: "chain", message: `is ${config.chain.name} but the node at ${rpc.endpoint} has another genesis block (${genesis})` }]);
    }
  }
  const readScript = createScriptReader(config.chain, config.acceptScripts);
  let tracker: MempoolTracker | undefined;
  logger.info(
    {
      chain: config.chain.name,
      endpoint: endpointLabel(config.rpc.url),
      rpc_auth: config.rpc.auth.kind,
      rest: config.restUrl ? endpointLabel(config.restUrl) : null,
      confirmations: config.confirmations,
      node_height: info.blocks,
      key_ref: keys.ref,
      seed_fingerprint: seed.fingerprint,
      hot_wallet: keys.hot.address,
      cold_wallet: config.coldWallet,
    },
    "UTXO agent configured",
  );

  const handle = await runAgent(
    common,
    {
      network: config.network,
      family: "utxo",
      chainId: config.chain.name,
      version: VERSION,
      deriveAddress: (i) => keys.deriver.derive(i),
      createFollower: createUtxoFollower({ logger }, { config, rpc, readScript, mempool: true, mempoolMetrics: utxoMetrics, onTracker: (t) => (tracker = t) }),
      systemWallets: systemWallets(keys, config),
      ...(o.transfers === false
        ? {}
        : { createTransferExecutor: (t) => createUtxoTransferExecutor({ logger: t.logger }, { config, rpc, keys, metrics: t.metrics, utxoMetrics }) }),
    },
    { agentMetrics: metrics, client: o.client, serveMetrics: o.serveMetrics, leaseDefaultTtlMs: o.leaseDefaultTtlMs },
  );

  // The hot wallet's balance for dashboards (whole coins as a float: never used for money).
  const balances = (async () => {
    while (!ac.signal.aborted) {
      try {
        const r = await rpc.call<{ total_amount: string }>("scantxoutset", ["start", [`addr(${keys.hot.address})`]]);
        metrics.setWalletBalance(config.chain.symbol, Number(r.total_amount));
      } catch (err) {
        if (!ac.signal.aborted) logger.debug({ err }, "Could not read the hot wallet's balance");
      }
      await delay(config.balanceIntervalMs, ac.signal);
    }
  })();

  let stopped: Promise<void> | undefined;
  const agent: UtxoAgent = {
    handle,
    rpc,
    keys,
    metrics: utxoMetrics,
    get mempool() {
      return tracker;
    },
    stop() {
      stopped ??= (async () => {
        await handle.stop();
        ac.abort();
        await balances;
        if (!o.seed) await seed.close();
      })();
      return stopped;
    },
  };
  common.shutdown.onShutdown("utxo-agent", () => agent.stop());
  return agent;
}
