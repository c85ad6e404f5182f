import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from "@ponte/common";

export type DepositEvent = "seen" | "confirmed" | "reorged";

/**
 * The agent's metrics, with the network label bound. Labels stay bounded: network, method
 * (a fixed set of RPC names), status (seen/confirmed/reorged).
 */
export interface AgentMetrics {
  readonly registry: Registry;
  setHead(height: bigint): void;
  setProcessed(height: bigint): void;
  /** Times one node RPC (method = JSON-RPC method or REST path name, never a parameter). */
  observeRpc(method: string, seconds: number, ok: boolean): void;
  deposit(event: DepositEvent, n?: number): void;
  reorg(depth: number): void;
  setLeaseHeld(held: boolean): void;
  setWatched(n: number): void;
  setPoolAvailable(n: number): void;
  coordinatorRetry(method: string): void;
  /** A system wallet's balance in whole units (a float: for dashboards only, never for money). */
  setWalletBalance(asset: string, units: number): void;
  transferReport(status: string): void;
  /** An order's execution threw (it is retried); counts what operators should look at. */
  transferError(): void;
  transferReplaced(): void;
  setTransfersInFlight(n: number): void;
}

export function createAgentMetrics(registry: Registry, network: string): AgentMetrics {
  const labels = { network };
  const head = new Gauge({ name: "ponte_agent_head_height", help: "Latest block height seen on the node", labelNames: ["network"], registers: [registry] });
  const processed = new Gauge({ name: "ponte_agent_processed_height", help: "Highest block acknowledged by the coordinator", labelNames: ["network"], registers: [registry] });
  const lag = new Gauge({ name: "ponte_agent_head_lag_blocks", help: "Head height minus processed height", labelNames: ["network"], registers: [registry] });
  const rpc = new Histogram({ name: "ponte_agent_rpc_latency_seconds", help: "Node RPC latency by method", labelNames: ["network", "method"], buckets: LATENCY_BUCKETS, registers: [registry] });
  const rpcErrors = new Counter({ name: "ponte_agent_rpc_errors_total", help: "Node RPC failures by method", labelNames: ["network", "method"], registers: [registry] });
  const deposits = new Counter({ name: "ponte_agent_deposits_total", help: "Deposits reported, by status", labelNames: ["network", "status"], registers: [registry] });
  const reorgDepth = new Histogram({ name: "ponte_agent_reorg_depth_blocks", help: "Depth of each reorg seen", labelNames: ["network"], buckets: [1, 2, 3, 5, 8, 13, 21, 34, 64, 128, 256], registers: [registry] });
  const lease = new Gauge({ name: "ponte_agent_lease_held", help: "1 while this agent holds the network's lease", labelNames: ["network"], registers: [registry] });
  const watched = new Gauge({ name: "ponte_agent_watched_addresses", help: "Addresses in the watch set", labelNames: ["network"], registers: [registry] });
  const pool = new Gauge({ name: "ponte_agent_pool_available_addresses", help: "Unused deposit addresses in the pool, as last reported", labelNames: ["network"], registers: [registry] });
  const balance = new Gauge({ name: "ponte_agent_wallet_balance", help: "Hot wallet balance in whole units of the asset", labelNames: ["network", "asset"], registers: [registry] });
  const transferReports = new Counter({ name: "ponte_agent_transfer_reports_total", help: "Transfer reports acknowledged by the coordinator, by status", labelNames: ["network", "status"], registers: [registry] });
  const transferErrors = new Counter({ name: "ponte_agent_transfer_errors_total", help: "Transfer order executions that threw and were retried", labelNames: ["network"], registers: [registry] });
  const transferReplaced = new Counter({ name: "ponte_agent_transfer_replacements_total", help: "Stuck transfers replaced with a fee bump", labelNames: ["network"], registers: [registry] });
  const transfersInFlight = new Gauge({ name: "ponte_agent_transfers_in_flight", help: "Transfer orders being executed", labelNames: ["network"], registers: [registry] });
  const retries = new Counter({ name: "ponte_agent_coordinator_retries_total", help: "Coordinator calls retried after a transient error", labelNames: ["network", "method"], registers: [registry] });

  let headH: bigint | undefined;
  let procH: bigint | undefined;
  const updateLag = () => {
    if (headH !== undefined && procH !== undefined) lag.set(labels, Number(headH > procH ? headH - procH : 0n));
  };
  lease.set(labels, 0);
  for (const status of ["seen", "confirmed", "reorged"]) deposits.inc({ network, status }, 0);

  return {
    registry,
    setHead(h) {
      headH = h;
      head.set(labels, Number(h));
      updateLag();
    },
    setProcessed(h) {
      procH = h;
      processed.set(labels, Number(h));
      updateLag();
    },
    observeRpc(method, seconds, ok) {
      rpc.observe({ network, method }, seconds);
      if (!ok) rpcErrors.inc({ network, method });
    },
    deposit(status, n = 1) {
      if (n > 0) deposits.inc({ network, status }, n);
    },
    reorg(depth) {
      reorgDepth.observe(labels, depth);
    },
    setLeaseHeld(held) {
      lease.set(labels, held ? 1 : 0);
    },
    setWatched(n) {
      watched.set(labels, n);
    },
    setPoolAvailable(n) {
      pool.set(labels, n);
    },
    coordinatorRetry(method) {
      retries.inc({ network, method });
    },
    setWalletBalance(asset, units) {
      balance.set({ network, asset }, units);
    },
    transferReport(status) {
      transferReports.inc({ network, status });
    },
    transferError() {
      transferErrors.inc(labels);
    },
    transferReplaced() {
      transferReplaced.inc(labels);
    },
    setTransfersInFlight(n) {
      transfersInFlight.set(labels, n);
    },
  };
}
