import { delay, grossBrl, newId, PonteError, PRICE_SCALE, type Logger } from "@ponte/common";
import type { Sql, Tx } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import type { Asset, AssetRegistry, PriceSource } from "../quote/types.js";
import { systemActor } from "../trade/actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "../trade/model.js";
import { transition, type TransitionContext } from "../trade/transition.js";

export type TransferKind = "SWEEP" | "REFUND" | "CUSTODIAL_SELL" | "REBALANCE" | "GAS_TOPUP";
export type TransferStatus = "PENDING" | "SIGNED" | "BROADCAST" | "CONFIRMED" | "FAILED" | "SKIPPED";
const FINAL: readonly TransferStatus[] = ["CONFIRMED", "FAILED", "SKIPPED"];
const RANK: Record<TransferStatus, number> = { PENDING: 0, SIGNED: 1, BROADCAST: 2, CONFIRMED: 3, FAILED: 3, SKIPPED: 3 };

export interface Attempt {
  attempt: number;
  txHash: string;
  rawTx: string;
  nonce: string;
  fee: string;
  status: TransferStatus;
}

export interface Order {
  id: string;
  network: string;
  kind: TransferKind;
  tradeId: string | null;
  status: TransferStatus;
  fromAddress: string;
  fromDerivationIndex: number;
  toAddress: string;
  contract: string;
  amount: bigint;
  deductFee: boolean;
  dependsOn: string | null;
  sourceTxRefs: string[];
  maxFee: bigint | null;
  attempts: Attempt[];
  reason: string | null;
  confirmedTxHash: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface SystemWalletInput {
  kind: "hot" | "cold";
  address: string;
  derivationPath: string;
  keyRef: string;
  ceiling: bigint | null;
}

export interface TransferOptions {
  /** A sweep is skipped when its fee would exceed this share of the swept value (basis points). */
  sweepMaxFeeBps: bigint;
  /** Failed sweeps of one trade retried up to this many orders in all. */
  maxSweepOrders: number;
  intervalMs: number;
  batchSize: number;
}

interface OrderRow {
  id: string;
  network: string;
  kind: TransferKind;
  trade_id: string | null;
  status: TransferStatus;
  from_address: string;
  to_address: string;
  contract: string;
  amount: string;
  deduct_fee: boolean;
  depends_on: string | null;
  source_tx_refs: string[];
  max_fee: string | null;
  reason: string | null;
  confirmed_tx_hash: string | null;
  created_at: Date;
  updated_at: Date;
  derivation_index: bigint | null;
  attempts: { attempt: number; tx_hash: string; raw_tx: string; nonce: string | null; fee: string | null; status: TransferStatus }[] | null;
}

const toOrder = (r: OrderRow): Order => ({
  id: r.id,
  network: r.network,
  kind: r.kind,
  tradeId: r.trade_id,
  status: r.status,
  fromAddress: r.from_address,
  fromDerivationIndex: Number(r.derivation_index ?? 0n),
  toAddress: r.to_address,
  contract: r.contract,
  amount: BigInt(r.amount),
  deductFee: r.deduct_fee,
  dependsOn: r.depends_on,
  sourceTxRefs: r.source_tx_refs,
  maxFee: r.max_fee === null ? null : BigInt(r.max_fee),
  attempts: (r.attempts ?? []).map((a) => ({
    attempt: a.attempt,
    txHash: a.tx_hash,
    rawTx: a.raw_tx,
    nonce: a.nonce ?? "",
    fee: a.fee ?? "",
    status: a.status,
  })),
  reason: r.reason,
  confirmedTxHash: r.confirmed_tx_hash,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

// Orders with what the agent needs: the deposit address's derivation index and earlier attempts.
const SELECT_ORDERS = `
  SELECT o.*, da.derivation_index,
         (SELECT json_agg(json_build_object('attempt', a.attempt, 'tx_hash', a.tx_hash, 'raw_tx', a.raw_tx,
                 'nonce', a.nonce, 'fee', a.fee::text, 'status', a.status) ORDER BY a.attempt)
            FROM transfer_attempts a WHERE a.order_id = o.id) AS attempts
    FROM transfer_transactions o
    LEFT JOIN deposit_addresses da ON da.network = o.network AND da.address = o.from_address`;

const actor = systemActor("transfers");

export type Transfers = ReturnType<typeof createTransfers>;

/**
 * Moving funds: sweeps of confirmed deposits to the network's hot wallet, refunds of what cannot
 * be paid, and the orders' lifecycle as the agents report it. Orders are rows first; an agent
 * streams the actionable ones (dependencies confirmed), records each signed transaction before it
 * broadcasts it, and reports until the order is final. Planning is claimed with FOR UPDATE SKIP
 * LOCKED on the trades, so replicas share it.
 */
export function createTransfers(common: {
  sql: Sql;
  logger: Logger;
  metrics: CoordinatorMetrics;
  registry: AssetRegistry;
  prices: PriceSource;
  transitions: TransitionContext;
  options: TransferOptions;
}) {
  const { sql, registry, prices, options: o } = common;
  const logger = common.logger.child({ component: "transfers" });
  const ac = new AbortController();
  let loop: Promise<void> | undefined;

  async function hotWallet(db: Sql | Tx, network: string): Promise<string | undefined> {
    const [w] = await db<{ address: string }[]>`SELECT address FROM system_wallets WHERE network = ${network} AND kind = 'hot'`;
    return w?.address;
  }

  /** Native base units worth `share` of `amount` of `asset`; undefined while prices are unavailable. */
  async function maxFeeFor(asset: Asset, amount: bigint): Promise<bigint | undefined> {
    const native = registry.byNetwork(asset.network).find((a) => !a.contract);
    if (!native) return undefined;
    try {
      const value = grossBrl(amount, { decimals: asset.decimals, price: await prices.price(asset), spreadBps: 0n, networkFeeBps: 0n });
      const nativePrice = await prices.price(native);
      // centavos × share → native base units at the native price (BRL per unit, PRICE_SCALE fixed point)
      return (value * o.sweepMaxFeeBps * 10n ** BigInt(native.decimals) * PRICE_SCALE) / (10_000n * 100n * nativePrice);
    } catch (err) {
      if (err instanceof PonteError && err.code === "PRICE_UNAVAILABLE") return undefined;
      throw err;
    }
  }

  async function insertOrder(tx: Tx, o2: {
    network: string; kind: TransferKind; tradeId: string | null; from: string; to: string; contract: string;
    amount: bigint; deductFee: boolean; dependsOn?: string; sourceTxRefs?: string[]; maxFee?: bigint; reason?: string;
  }): Promise<string> {
    const id = newId("order");
    await tx`INSERT INTO transfer_transactions (id, network, kind, trade_id, status, from_address, to_address, contract, amount,
                                                deduct_fee, depends_on, source_tx_refs, max_fee, reason)
             VALUES (${id}, ${o2.network}, ${o2.kind}, ${o2.tradeId}, 'PENDING', ${o2.from}, ${o2.to}, ${o2.contract},
                     ${o2.amount.toString()}, ${o2.deductFee}, ${o2.dependsOn ?? null}, ${o2.sourceTxRefs ?? []},
                     ${o2.maxFee === undefined ? null : o2.maxFee.toString()}, ${o2.reason ?? null})`;
    common.metrics.transfers.inc({ kind: o2.kind, status: "PENDING" });
    return id;
  }

  /** Confirmed deposits of the trade's own asset still sitting at its deposit address. */
  async function confirmedDeposits(tx: Tx, trade: Trade): Promise<{ amount: bigint; refs: string[] }> {
    const rows = await tx<{ tx_ref: string; amount: string }[]>`
      SELECT tx_ref, amount FROM deposits WHERE trade_id = ${trade.id} AND contract = ${trade.contract} AND status = 'CONFIRMED'`;
    return { amount: rows.reduce((s, r) => s + BigInt(r.amount), 0n), refs: rows.map((r) => r.tx_ref) };
  }

  /** Orders a move out of a deposit address; a token needs the gas topped up from the hot wallet first. */
  async function fromDepositAddress(tx: Tx, trade: Trade, kind: "SWEEP" | "REFUND", to: string, hot: string, amount: bigint, refs: string[], maxFee?: bigint): Promise<string> {
    let dependsOn: string | undefined;
    if (trade.contract) {
      dependsOn = await insertOrder(tx, {
        network: trade.network, kind: "GAS_TOPUP", tradeId: trade.id, from: hot, to: trade.depositAddress,
        contract: trade.contract, amount: 0n, deductFee: false, reason: `gas for the ${kind.toLowerCase()}`,
      });
    }
    return insertOrder(tx, {
      network: trade.network, kind, tradeId: trade.id, from: trade.depositAddress, to, contract: trade.contract, amount,
      deductFee: !trade.contract, dependsOn, sourceTxRefs: refs, maxFee,
    });
  }

  async function planSweeps(): Promise<number> {
    return sql.begin(async (tx) => {
      const rows = await tx<TradeRow[]>`
        SELECT t.* FROM instant_trades t
         WHERE t.status IN ('PAYMENT_CONFIRMED', 'PAYOUT_PENDING', 'COMPLETED') AND t.source = 'deposit'
           AND NOT EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.trade_id = t.id AND x.kind IN ('SWEEP', 'REFUND') AND x.status <> 'FAILED')
           AND (SELECT count(*) FROM transfer_transactions x WHERE x.trade_id = t.id AND x.kind = 'SWEEP') < ${o.maxSweepOrders}
           AND EXISTS (SELECT 1 FROM system_wallets w WHERE w.network = t.network AND w.kind = 'hot')
         ORDER BY t.updated_at LIMIT ${o.batchSize} FOR UPDATE OF t SKIP LOCKED`;
      let n = 0;
      for (const row of rows) {
        const trade = tradeFromRow(row);
        const asset = registry.find(trade.symbol, trade.network);
        const hot = await hotWallet(tx, trade.network);
        const { amount, refs } = await confirmedDeposits(tx, trade);
        if (!asset || !hot || amount === 0n) continue;
        const maxFee = await maxFeeFor(asset, amount);
        if (maxFee === undefined) {
          logger.warn({ trade_id: trade.id }, "Sweep deferred: no price to bound its fee");
          continue;
        }
        const id = await fromDepositAddress(tx, trade, "SWEEP", hot, hot, amount, refs, maxFee);
        logger.info({ trade_id: trade.id, order_id: id, network: trade.network }, "Sweep ordered");
        n++;
      }
      if (n > 0) await tx`SELECT pg_notify('ponte_transfers', '')`;
      return n;
    });
  }

  async function planRefunds(): Promise<number> {
    return sql.begin(async (tx) => {
      // What cannot be paid goes to REFUND_PENDING: shortfalls, and final late deposits to closed trades.
      const toRefund = await tx<TradeRow[]>`
        SELECT t.* FROM instant_trades t
         WHERE (t.status = 'UNDERPAID'
                OR (t.status IN ('EXPIRED', 'CANCELLED') AND EXISTS (
                      SELECT 1 FROM deposits d WHERE d.trade_id = t.id AND d.status = 'CONFIRMED' AND d.contract = t.contract)))
           -- only where an agent can execute the refund (its hot wallet pays any gas)
           AND EXISTS (SELECT 1 FROM system_wallets w WHERE w.network = t.network AND w.kind = 'hot')
         ORDER BY t.updated_at LIMIT ${o.batchSize} FOR UPDATE OF t SKIP LOCKED`;
      for (const row of toRefund) {
        const trade = tradeFromRow(row);
        await transition(tx, common.transitions, {
          tradeId: trade.id, from: trade.status, to: "REFUND_PENDING", actor,
          reason: trade.status === "UNDERPAID" ? "the deposit was short of the quote" : "a deposit arrived after the trade closed",
        });
      }
      const pending = await tx<TradeRow[]>`
        SELECT t.* FROM instant_trades t
         WHERE t.status = 'REFUND_PENDING'
           AND NOT EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.trade_id = t.id AND x.kind = 'REFUND' AND x.status <> 'FAILED')
         ORDER BY t.updated_at LIMIT ${o.batchSize} FOR UPDATE OF t SKIP LOCKED`;
      let n = 0;
      for (const row of pending) {
        const trade = tradeFromRow(row);
        const hot = await hotWallet(tx, trade.network);
        if (!hot) continue;
        const { amount, refs } = await confirmedDeposits(tx, trade);
        if (amount === 0n || !trade.refundAddress) {
          await transition(tx, common.transitions, {
            tradeId: trade.id, from: "REFUND_PENDING", to: "MANUAL_REVIEW", actor,
            reason: amount === 0n ? "nothing confirmed to refund" : "no refund address",
          });
          continue;
        }
        // Where the funds are now: still at the deposit address unless a sweep got that far.
        const [sweep] = await tx<{ id: string; status: TransferStatus }[]>`
          SELECT id, status FROM transfer_transactions WHERE trade_id = ${trade.id} AND kind = 'SWEEP'
             AND status NOT IN ('FAILED', 'SKIPPED') FOR UPDATE`;
        if (sweep?.status === "PENDING") {
          await tx`UPDATE transfer_transactions SET status = 'SKIPPED', reason = 'superseded by a refund', updated_at = now()
                    WHERE id = ${sweep.id} OR id = (SELECT depends_on FROM transfer_transactions WHERE id = ${sweep.id} AND status = 'PENDING')`;
        }
        const fromHot = !!sweep && sweep.status !== "PENDING";
        const id = fromHot
          ? await insertOrder(tx, {
              network: trade.network, kind: "REFUND", tradeId: trade.id, from: hot, to: trade.refundAddress,
              contract: trade.contract, amount, deductFee: !trade.contract, sourceTxRefs: refs,
            })
          : await fromDepositAddress(tx, trade, "REFUND", trade.refundAddress, hot, amount, refs);
        logger.info({ trade_id: trade.id, order_id: id, from_hot_wallet: fromHot }, "Refund ordered");
        n++;
      }
      if (n > 0) await tx`SELECT pg_notify('ponte_transfers', '')`;
      return n + toRefund.length;
    });
  }

  async function lockedTrade(tx: Tx, id: string): Promise<Trade | undefined> {
    const [row] = await tx<TradeRow[]>`SELECT * FROM instant_trades WHERE id = ${id} FOR UPDATE`;
    return row ? tradeFromRow(row) : undefined;
  }

  const planOnce = async (): Promise<number> => (await planSweeps()) + (await planRefunds());

  return {
    /** Records the wallets an agent derives (hot) or was configured with (cold). Never a key. */
    async registerWallets(network: string, wallets: SystemWalletInput[]): Promise<void> {
      for (const w of wallets) {
        await sql`INSERT INTO system_wallets (network, kind, address, derivation_path, key_ref, ceiling)
                  VALUES (${network}, ${w.kind}, ${w.address}, ${w.derivationPath || null}, ${w.keyRef || null},
                          ${w.ceiling === null ? null : w.ceiling.toString()})
                  ON CONFLICT (network, kind) DO UPDATE SET address = EXCLUDED.address, derivation_path = EXCLUDED.derivation_path,
                    key_ref = EXCLUDED.key_ref, ceiling = EXCLUDED.ceiling, updated_at = now()
                  WHERE (system_wallets.address, system_wallets.derivation_path, system_wallets.key_ref, system_wallets.ceiling)
                        IS DISTINCT FROM (EXCLUDED.address, EXCLUDED.derivation_path, EXCLUDED.key_ref, EXCLUDED.ceiling)`;
      }
    },

    planOnce,

    /** Orders the network's agent can act on now (dependencies confirmed), with their attempts. */
    async actionable(network: string): Promise<Order[]> {
      const rows = await sql.unsafe<OrderRow[]>(
        `${SELECT_ORDERS}
          LEFT JOIN transfer_transactions dep ON dep.id = o.depends_on
         WHERE o.network = $1 AND o.status IN ('PENDING', 'SIGNED', 'BROADCAST')
           AND (o.depends_on IS NULL OR dep.status = 'CONFIRMED')
         ORDER BY o.created_at`,
        [network],
      );
      return rows.map(toOrder);
    },

    async ordersOfTrade(tradeId: string): Promise<Order[]> {
      const rows = await sql.unsafe<OrderRow[]>(`${SELECT_ORDERS} WHERE o.trade_id = $1 ORDER BY o.created_at`, [tradeId]);
      return rows.map(toOrder);
    },

    /**
     * One report from the agent, idempotent: a repeated or out-of-date report changes nothing; a
     * final status is never left. The signed transaction is stored before the agent broadcasts it.
     */
    async report(network: string, r: { orderId: string; attempt?: Attempt; status: TransferStatus; reason: string; blockHeight: bigint }, tx: Tx): Promise<void> {
      const [row] = await tx<OrderRow[]>`SELECT * FROM transfer_transactions WHERE id = ${r.orderId} AND network = ${network} FOR UPDATE`;
      if (!row) throw new PonteError("NOT_FOUND", "No such transfer order on this network", { order_id: r.orderId });
      if (r.attempt && r.attempt.txHash) {
        await tx`INSERT INTO transfer_attempts (order_id, attempt, tx_hash, raw_tx, nonce, fee, status)
                 VALUES (${r.orderId}, ${r.attempt.attempt}, ${r.attempt.txHash}, ${r.attempt.rawTx}, ${r.attempt.nonce || null},
                         ${r.attempt.fee || null}::numeric, ${r.status})
                 ON CONFLICT (order_id, attempt) DO UPDATE SET status = EXCLUDED.status, updated_at = now(),
                   block_height = COALESCE(${r.blockHeight > 0n ? r.blockHeight.toString() : null}::bigint, transfer_attempts.block_height)
                 WHERE transfer_attempts.tx_hash = EXCLUDED.tx_hash`;
      }
      if (FINAL.includes(row.status) || RANK[r.status] <= RANK[row.status]) return;
      await tx`UPDATE transfer_transactions SET status = ${r.status}, updated_at = now(),
                 reason = COALESCE(${r.reason || null}, reason),
                 confirmed_tx_hash = ${r.status === "CONFIRMED" ? (r.attempt?.txHash ?? null) : null},
                 block_height = ${r.status === "CONFIRMED" && r.blockHeight > 0n ? r.blockHeight.toString() : null}
               WHERE id = ${r.orderId}`;
      common.metrics.transfers.inc({ kind: row.kind, status: r.status });
      const log = logger.child({ order_id: row.id, trade_id: row.trade_id, kind: row.kind });
      if (r.status === "CONFIRMED" && row.kind === "REFUND" && row.trade_id) {
        const trade = await lockedTrade(tx, row.trade_id);
        if (trade?.status === "REFUND_PENDING") {
          await transition(tx, common.transitions, {
            tradeId: trade.id, from: "REFUND_PENDING", to: "REFUNDED", actor: { kind: "agent", id: network },
            reason: "refund final on chain", data: { order_id: row.id, tx_hash: r.attempt?.txHash ?? "" },
          });
        }
      }
      if (r.status === "FAILED") {
        log.error({ reason: r.reason }, "Transfer failed");
        // What waited on this order cannot happen now.
        await tx`UPDATE transfer_transactions SET status = 'FAILED', reason = 'its gas top-up failed', updated_at = now()
                  WHERE depends_on = ${row.id} AND status = 'PENDING'`;
        if (row.kind === "REFUND" && row.trade_id) {
          const trade = await lockedTrade(tx, row.trade_id);
          if (trade?.status === "REFUND_PENDING") {
            await transition(tx, common.transitions, {
              tradeId: trade.id, from: "REFUND_PENDING", to: "MANUAL_REVIEW", actor: { kind: "agent", id: network },
              reason: `refund failed: ${r.reason || "unknown"}`, data: { order_id: row.id },
            });
          }
        }
      }
      if (r.status === "SKIPPED") log.warn({ reason: r.reason }, "Transfer skipped; the funds stay where they are");
      await tx`SELECT pg_notify('ponte_transfers', ${network})`;
    },

    start() {
      loop = (async () => {
        while (!ac.signal.aborted) {
          try {
            const n = await planOnce();
            common.metrics.workerRuns.inc({ worker: "transfers", result: "ok" });
            if (n >= o.batchSize) continue;
          } catch (err) {
            common.metrics.workerRuns.inc({ worker: "transfers", result: "error" });
            logger.error({ err }, "Transfer planning failed");
          }
          await delay(o.intervalMs, ac.signal);
        }
      })();
    },
    async stop() {
      ac.abort();
      await loop;
    },
  };
}
