// Test set-up for the transfer executor on anvil: the agent's keys from AGENT_MNEMONIC, a
// config, and a recorder that keeps the reports the way the coordinator records them (attempts
// by number with their latest status), so a test can hand a "restarted" executor the order with
// its recorded attempts, as StreamTransferOrders re-sends it.
import type { TransferAttempt, TransferOrder, TransferReport, TransferRunContext, TransferStatus } from "@ponte/agent-runtime";
import { loadSeed, type SeedHandle } from "@ponte/agent-runtime/keys";
import { PonteError } from "@ponte/common";
import type { Sql } from "@ponte/coordinator";
import { eventually } from "@ponte/common/testing";
import type { AgentCommon, RuntimeConfig } from "@ponte/agent-runtime";
import { createRegistry, createShutdown } from "@ponte/common";
import { HDNodeWallet, Wallet, type JsonRpcProvider } from "ethers";
import { pino } from "pino";
import { startEvmAgent, type EvmAgent } from "../agent/index.js";
import type { EvmConfig, TokenConfig } from "../config/index.js";
import { createEvmKeys, type EvmKeys } from "../keys/index.js";
import { createEvmTransferExecutor, type EvmTransferExecutor } from "../transfer/index.js";
import { AGENT_MNEMONIC, type Anvil } from "./anvil.js";
import { silentLogger, testRpc } from "./rpc.js";

export function transferConfig(anvil: Anvil, tokens: TokenConfig[], o: Partial<EvmConfig> = {}): EvmConfig {
  return {
    network: "anvil",
    chainId: 31337n,
    rpc: [{ http: anvil.http, ws: undefined }],
    finality: { kind: "confirmations", confirmations: 3 },
    tokens,
    startHeight: 0n,
    batchSize: 50,
    maxInFlight: 4,
    rpcBatchSize: 20,
    logsMaxRange: 1_000,
    pollIntervalMs: 50,
    rpcTimeoutMs: 3_000,
    coldWallet: null,
    hotCeiling: null,
    maxFeePerGas: 1_000_000_000_000n,
    replaceAfterBlocks: 3,
    erc20GasLimit: 65_000n,
    balanceIntervalMs: 60_000,
    ...o,
  };
}

export async function agentSeed(): Promise<SeedHandle> {
  return loadSeed({ source: "env", variable: "TEST_SEED", value: AGENT_MNEMONIC }, silentLogger());
}

/** A wallet for an agent key, to act as the owner of an address in a test (approve, drain). */
export function agentWallet(path: string, provider: JsonRpcProvider): Wallet {
  const w = HDNodeWallet.fromPhrase(AGENT_MNEMONIC, undefined, path);
  return new Wallet(w.privateKey, provider);
}

export interface Harness {
  keys: EvmKeys;
  config: EvmConfig;
  executor(): EvmTransferExecutor;
  stop(): void;
}

export async function transferHarness(anvil: Anvil, tokens: TokenConfig[], o: Partial<EvmConfig> = {}): Promise<Harness> {
  const keys = await createEvmKeys(await agentSeed());
  const config = transferConfig(anvil, tokens, o);
  const rpcs: ReturnType<typeof testRpc>[] = [];
  return {
    keys,
    config,
    executor() {
      const r = testRpc(anvil.http);
      rpcs.push(r);
      return createEvmTransferExecutor({ logger: silentLogger() }, { config, rpc: r.rpc, keys, metrics: r.metrics });
    },
    stop() {
      for (const r of rpcs) r.abort();
    },
  };
}

type Fault = { status: TransferStatus; record: boolean; orderId?: string };

export interface Recorder {
  readonly reports: TransferReport[];
  /** A run context for one "process": aborting it is that process stopping. */
  context(signal?: AbortSignal): TransferRunContext;
  /**
   * The next report of `status` throws: with record, after it was stored (the agent died after
   * the coordinator's acknowledgement); without, before (it never arrived).
   */
  failNext(status: TransferStatus, o?: { record?: boolean; orderId?: string }): void;
  /** What the coordinator would re-send: the order with its attempts, as recorded. */
  resend(order: TransferOrder): TransferOrder;
  statuses(orderId: string): TransferStatus[];
  final(orderId: string): TransferReport | undefined;
  waitFinal(orderId: string, o?: { timeout?: number; mine?: Anvil }): Promise<TransferReport>;
}

const FINAL = new Set<TransferStatus>(["CONFIRMED", "FAILED", "SKIPPED"]);

export function createRecorder(): Recorder {
  const reports: TransferReport[] = [];
  const attempts = new Map<string, Map<number, TransferAttempt>>();
  const status = new Map<string, TransferStatus>();
  const faults: Fault[] = [];
  const store = (r: TransferReport) => {
    reports.push(structuredClone(r));
    status.set(r.orderId, r.attempt.status);
    if (r.attempt.txHash) {
      let m = attempts.get(r.orderId);
      if (!m) attempts.set(r.orderId, (m = new Map()));
      m.set(r.attempt.attempt, { ...r.attempt });
    }
  };
  const self: Recorder = {
    reports,
    context(signal = new AbortController().signal) {
      return {
        signal,
        statusOf: (id) => status.get(id),
        async report(r) {
          if (signal.aborted) throw new PonteError("LEASE_LOST", "this test process was stopped");
          const i = faults.findIndex((f) => f.status === r.attempt.status && (!f.orderId || f.orderId === r.orderId));
          if (i >= 0) {
            const [f] = faults.splice(i, 1);
            if (f!.record) store(r);
            throw new PonteError("LEASE_LOST", `injected: the agent stops at ${r.attempt.status}`);
          }
          store(r);
        },
      };
    },
    failNext(s, o = {}) {
      faults.push({ status: s, record: o.record ?? false, orderId: o.orderId });
    },
    resend(order) {
      const recorded = [...(attempts.get(order.orderId)?.values() ?? [])].sort((a, b) => a.attempt - b.attempt);
      return { ...order, attempts: recorded, status: status.get(order.orderId) ?? "PENDING" };
    },
    statuses: (id) => reports.filter((r) => r.orderId === id).map((r) => r.attempt.status),
    final: (id) => reports.find((r) => r.orderId === id && FINAL.has(r.attempt.status)),
    async waitFinal(id, o = {}) {
      return eventually(
        async () => {
          const f = self.final(id);
          if (f) return f;
          if (o.mine) await o.mine.mine(1);
          throw new Error(`order ${id} has no final report yet: ${self.statuses(id).join(", ") || "none"}`);
        },
        { timeout: o.timeout ?? 15_000, interval: 60 },
      );
    },
  };
  return self;
}

let seq = 0;
export function order(o: Partial<TransferOrder> & Pick<TransferOrder, "kind" | "fromAddress" | "toAddress">): TransferOrder {
  return {
    orderId: `tro_test_${process.pid}_${++seq}`,
    tradeId: null,
    fromDerivationIndex: 0,
    contract: null,
    amount: 0n,
    deductFee: false,
    sourceTxRefs: [],
    attempts: [],
    dependsOn: null,
    status: "PENDING",
    maxFee: null,
    ...o,
  };
}

// ---- against the real coordinator ----

export interface OrderRow {
  id: string;
  kind: string;
  status: string;
  reason: string | null;
  confirmed_tx_hash: string | null;
  from_address: string;
  to_address: string;
  amount: string;
  max_fee: string | null;
}

export interface AttemptRow {
  attempt: number;
  tx_hash: string;
  raw_tx: string;
  nonce: string | null;
  fee: string | null;
  status: string;
}

/**
 * An order as the coordinator's workflows write one (sweeps and refunds are planned from trades;
 * tests of the agent's side write the row directly), then the NOTIFY that wakes the streams.
 */
export async function insertOrder(
  sql: Sql,
  o: { kind: string; from: string; to: string; amount: bigint; contract?: string; deductFee?: boolean; maxFee?: bigint; dependsOn?: string; network?: string },
): Promise<string> {
  const id = `tro_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const network = o.network ?? "anvil";
  await sql`INSERT INTO transfer_transactions (id, network, kind, status, from_address, to_address, contract, amount, deduct_fee, depends_on, max_fee)
            VALUES (${id}, ${network}, ${o.kind}, 'PENDING', ${o.from}, ${o.to}, ${o.contract ?? ""}, ${o.amount.toString()},
                    ${o.deductFee ?? false}, ${o.dependsOn ?? null}, ${o.maxFee === undefined ? null : o.maxFee.toString()})`;
  await sql`SELECT pg_notify('ponte_transfers', ${network})`;
  return id;
}

export async function orderRow(sql: Sql, id: string): Promise<OrderRow> {
  const [r] = await sql<OrderRow[]>`SELECT id, kind, status, reason, confirmed_tx_hash, from_address, to_address, amount::text AS amount, max_fee::text AS max_fee
                                      FROM transfer_transactions WHERE id = ${id}`;
  if (!r) throw new Error(`no order ${id}`);
  return r;
}

export async function ordersOfTrade(sql: Sql, tradeId: string): Promise<OrderRow[]> {
  return sql<OrderRow[]>`SELECT id, kind, status, reason, confirmed_tx_hash, from_address, to_address, amount::text AS amount, max_fee::text AS max_fee
                           FROM transfer_transactions WHERE trade_id = ${tradeId} ORDER BY created_at, kind`;
}

export async function attemptRows(sql: Sql, id: string): Promise<AttemptRow[]> {
  return sql<AttemptRow[]>`SELECT attempt, tx_hash, raw_tx, nonce, fee::text AS fee, status FROM transfer_attempts WHERE order_id = ${id} ORDER BY attempt`;
}

/** Mines a block every intervalMs until stopped (finality for the agent's confirmations rule). */
export function startMiner(anvil: Anvil, intervalMs = 200): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await anvil.mine(1).catch(() => undefined);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

export interface TransferAgent extends EvmAgent {
  common: AgentCommon;
  logs: Record<string, unknown>[];
}

/** The EVM agent in process with transfers on, against a coordinator at `address`. */
export async function startTransferAgent(address: string, config: EvmConfig, o: { agentId?: string } = {}): Promise<TransferAgent> {
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
    coordinatorAddress: address,
    coordinatorTls: false,
    coordinatorDeadlineMs: 2_000,
    agentId: o.agentId ?? `agent-${Math.random().toString(36).slice(2, 8)}`,
    metricsHost: "127.0.0.1",
    metricsPort: 0,
    poolCheckIntervalMs: 60_000,
    logLevel: "info",
  };
  const common: AgentCommon = { config: runtime, logger, metrics: createRegistry("agent-evm-transfer-test"), shutdown: createShutdown(logger) };
  const agent = await startEvmAgent(common, { config, mnemonic: AGENT_MNEMONIC, serveMetrics: false });
  return Object.assign(agent, { common, logs });
}
