import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import {
  childLogger,
  createLogger,
  createRegistry,
  createShutdown,
  delay,
  PonteError,
  retry,
  serveMetrics,
  type Logger,
  type Registry,
  type Shutdown,
} from "@ponte/common";
import { createCoordinatorClient, type CoordinatorClient, type WalletBalancesReport } from "../client/index.js";
import { loadRuntimeConfig, type RuntimeConfig } from "../config/index.js";
import { createLease, type LeaseTerm } from "../lease/index.js";
import { createAgentMetrics, type AgentMetrics } from "../metrics/index.js";
import { createPoolKeeper, type DeriveAddress } from "../pool/index.js";
import { createReporter, isLeaseLost, type Reporter } from "../report/index.js";
import { consumeTransferOrders, createTransferReportSink, createTransferRunner, type TransferExecutor } from "../transfer/index.js";
import type { ChainFamily, CursorState, SystemWallet } from "../types.js";
import { createWatchSet, type WatchView } from "../watch/index.js";

/** What every factory of an agent process receives (conventions: one `common`). */
export interface AgentCommon {
  config: RuntimeConfig;
  logger: Logger;
  metrics: Registry;
  shutdown: Shutdown;
}

/** Everything a chain family's follower needs for one lease term. */
export interface FollowerContext {
  network: string;
  logger: Logger;
  metrics: AgentMetrics;
  /** Aborted when the term ends (lease lost, shutdown): return from run() promptly. */
  signal: AbortSignal;
  epoch: bigint;
  /** The coordinator's cursor when the follower was created. */
  cursor: CursorState;
  /** Re-reads the cursor (after an INVALID_STATE answer to a report). */
  getCursor(): Promise<CursorState>;
  watch: WatchView;
  report: Reporter["report"];
  reportReorg: Reporter["reportReorg"];
  reportMempool: Reporter["reportMempool"];
}

/** What a family's transfer executor gets for one lease term. */
export interface TransferTermContext {
  network: string;
  logger: Logger;
  metrics: AgentMetrics;
  /** Aborted when the term ends: no signing or reporting after it. */
  signal: AbortSignal;
  epoch: bigint;
}

export interface Follower {
  /** Follows the chain until ctx.signal aborts. Throwing restarts a fresh follower from the cursor, after a backoff. */
  run(): Promise<void>;
}

/** What a chain family plugs into the runtime. */
export interface ChainPlugin {
  network: string;
  family: ChainFamily;
  /** EVM chain id, UTXO network name, Solana genesis hash. */
  chainId: string;
  version?: string;
  /** Watch-set keys are normalised with this (EVM: lower case). */
  normalizeAddress?: (address: string) => string;
  deriveAddress: DeriveAddress;
  createFollower(ctx: FollowerContext): Follower | Promise<Follower>;
  /** The network's hot (and cold) wallet, sent at registration. */
  systemWallets?: SystemWallet[];
  /**
   * Executes transfer orders while this agent holds the lease (one executor per term, so a
   * standby that takes over starts from the coordinator's records). Absent: the agent only watches.
   */
  createTransferExecutor?(ctx: TransferTermContext): TransferExecutor;
}

export interface AgentHandle {
  readonly agentId: string;
  readonly leaseHeld: boolean;
  readonly leaseEpoch: bigint;
  /** Port of the metrics server, when one was started. */
  readonly metricsPort: number | undefined;
  readonly watch: WatchView;
  readonly agentMetrics: AgentMetrics;
  /**
   * Sends the system wallets' balances read at a block, under the lease; false (nothing sent)
   * while this agent stands by.
   */
  reportWalletBalances(report: WalletBalancesReport): Promise<boolean>;
  /** Stops following, releases the lease, closes the client and the metrics server. */
  stop(): Promise<void>;
}

/** Builds `common` from the environment for an agent process (used once, in main.ts). */
export function createAgentCommon(component: string, env: NodeJS.ProcessEnv = process.env): AgentCommon {
  const config = loadRuntimeConfig(env);
  const logger = createLogger({ name: component, level: config.logLevel });
  return { config, logger, metrics: createRegistry(component), shutdown: createShutdown(logger) };
}

/**
 * Starts an agent: metrics server, then registration and the lease loop. While this process
 * holds the lease it streams the watch set, keeps the address pool filled and runs the
 * family's follower from the coordinator's cursor; on losing the lease it stops all of that
 * and stands by. Returns once started; stop() (also registered with common.shutdown) ends it.
 */
export async function runAgent(
  common: AgentCommon,
  plugin: ChainPlugin,
  opts: {
    client?: CoordinatorClient;
    /** Pass when the family records node metrics before the agent starts (one set per registry). */
    agentMetrics?: AgentMetrics;
    serveMetrics?: boolean;
    leaseDefaultTtlMs?: number;
  } = {},
): Promise<AgentHandle> {
  const { config } = common;
  const logger = childLogger(common.logger, { network: plugin.network });
  const metrics = opts.agentMetrics ?? createAgentMetrics(common.metrics, plugin.network);
  const client =
    opts.client ??
    createCoordinatorClient({ address: config.coordinatorAddress, tls: config.coordinatorTls, deadlineMs: config.coordinatorDeadlineMs, logger });
  const watch = createWatchSet({ logger }, { client, metrics, normalize: plugin.normalizeAddress, network: plugin.network });
  const pool = createPoolKeeper({ logger }, { client, derive: plugin.deriveAddress, metrics, network: plugin.network, intervalMs: config.poolCheckIntervalMs });
  const lease = createLease({ logger }, {
    client,
    network: plugin.network,
    agentId: config.agentId,
    family: plugin.family,
    chainId: plugin.chainId,
    version: plugin.version ?? "0.0.0",
    systemWallets: plugin.systemWallets,
    metrics,
    defaultTtlMs: opts.leaseDefaultTtlMs,
  });

  let stopping = false;
  let server: Server | undefined;
  if (opts.serveMetrics !== false) {
    server = await serveMetrics({ registry: common.metrics, host: config.metricsHost, port: config.metricsPort, ready: () => !stopping });
    // The port actually bound (METRICS_PORT=0 picks one): what a scraper or an operator needs.
    logger.info({ metrics_host: config.metricsHost, metrics_port: (server.address() as AddressInfo).port }, "Metrics server listening");
  }

  const onTerm = async (term: LeaseTerm) => {
    const reporter = createReporter({ logger }, { client, metrics, identity: term.identity, signal: term.signal, onLeaseLost: term.lost });
    const watchRun = watch.run(term.identity, term.signal, term.lost);
    const poolRun = pool.run(term.identity, term.signal, term.lost);
    const transfersRun = runTransfers(term);
    // An upsert is an allocation (a trade took a pool address): top the pool up.
    const unsubscribe = watch.onChange(() => pool.poke());
    const getCursor = () =>
      retry(() => client.getCursor(term.identity), {
        name: "GetCursor",
        logger,
        signal: term.signal,
        attempts: Number.POSITIVE_INFINITY,
        maxMs: 5_000,
        isRetryable: (err) => err instanceof PonteError && err.retryable,
        onRetry: () => metrics.coordinatorRetry("GetCursor"),
      });
    try {
      let failures = 0;
      while (!term.signal.aborted) {
        try {
          await watch.waitSynced(term.signal);
          if (term.signal.aborted) break;
          const cursor = await getCursor();
          if (cursor.block) metrics.setProcessed(cursor.block.height);
          logger.info(
            { lease_epoch: term.epoch.toString(), cursor_height: cursor.block?.height.toString() ?? null, cursor_hash: cursor.block?.hash ?? null },
            "Starting the follower from the coordinator's cursor",
          );
          const follower = await plugin.createFollower({
            network: plugin.network,
            logger,
            metrics,
            signal: term.signal,
            epoch: term.epoch,
            cursor,
            getCursor,
            watch,
            report: reporter.report,
            reportReorg: reporter.reportReorg,
            reportMempool: reporter.reportMempool,
          });
          await follower.run();
          if (!term.signal.aborted) throw new Error("the follower returned while the lease is held");
        } catch (err) {
          if (term.signal.aborted) break;
          if (isLeaseLost(err)) {
            term.lost("the coordinator says the lease was lost");
            break;
          }
          failures++;
          const waitMs = Math.min(10_000, 250 * 2 ** Math.min(failures, 6));
          logger.error({ err, attempt: failures, wait_ms: waitMs }, "Follower failed; restarting from the coordinator's cursor");
          await delay(waitMs, term.signal);
        }
      }
    } finally {
      unsubscribe();
      await Promise.allSettled([watchRun, poolRun, transfersRun]);
    }
  };

  // Transfers run beside the follower for the whole term: signing needs the lease (the
  // coordinator fences a stale epoch, so a SIGNED report — and with it the broadcast — of an
  // agent that lost the lease is refused), watching does not need transfers.
  async function runTransfers(term: LeaseTerm): Promise<void> {
    if (!plugin.createTransferExecutor) return;
    const executor = plugin.createTransferExecutor({ network: plugin.network, logger, metrics, signal: term.signal, epoch: term.epoch });
    const report = createTransferReportSink({ logger }, { client, identity: term.identity, signal: term.signal, metrics, onLeaseLost: term.lost });
    const runner = createTransferRunner({ logger }, { network: plugin.network, executor, report, signal: term.signal, metrics, onLeaseLost: term.lost });
    try {
      await consumeTransferOrders({ logger }, { client, identity: term.identity, signal: term.signal, runner, onLeaseLost: term.lost });
    } finally {
      await runner.drain();
      metrics.setTransfersInFlight(0);
    }
  }

  lease.start(onTerm);
  logger.info({ agent_id: config.agentId, family: plugin.family, chain_id: plugin.chainId }, "Agent started; registering with the coordinator");

  let stopped: Promise<void> | undefined;
  const handle: AgentHandle = {
    agentId: config.agentId,
    get leaseHeld() {
      return lease.held;
    },
    get leaseEpoch() {
      return lease.epoch;
    },
    metricsPort: server ? (server.address() as AddressInfo).port : undefined,
    watch,
    agentMetrics: metrics,
    async reportWalletBalances(report) {
      if (!lease.held || stopping) return false;
      await client.reportWalletBalances({ network: plugin.network, agentId: config.agentId, leaseEpoch: lease.epoch }, report);
      return true;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await lease.stop();
        if (!opts.client) client.close();
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return stopped;
    },
  };
  common.shutdown.onShutdown("agent", () => handle.stop());
  return handle;
}
