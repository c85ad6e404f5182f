import { grossBrl, PonteError, PRICE_SCALE, type Logger } from "@ponte/common";
import type { Sql, Tx } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import type { Asset, AssetRegistry, PriceSource } from "../quote/types.js";
import { systemActor } from "../trade/actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "../trade/model.js";
import { transition, type TransitionContext } from "../trade/transition.js";
import { workerLoop } from "../worker-loop.js";
import { hotWallet, insertOrder as insertOrderRow, orderFromUserAddress, type NewOrder, type TransferKind, type TransferPurpose, type TransferStatus } from "./orders.js";

export type { TransferKind, TransferPurpose, TransferStatus } from "./orders.js";
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
  purpose: TransferPurpose;
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
  /** A hot wallet is rebalanced to cold once it holds more than its ceiling plus this share of it (basis points). */
  rebalanceMarginBps: bigint;
}

interface OrderRow {
  id: string;
  network: string;
  kind: TransferKind;
  purpose: TransferPurpose;
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
  purpose: r.purpose,
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

// Orders with what the agent needs: the derivation index of the address it moves funds out of (a
// deposit address, or a custodial wallet for CUSTODIAL_SELL) and earlier attempts.
const SELECT_ORDERS = `
  SELECT o.*, COALESCE(da.derivation_index, ca.derivation_index) AS derivation_index,
         (SELECT json_agg(json_build_object('attempt', a.attempt, 'tx_hash', a.tx_hash, 'raw_tx', a.raw_tx,
                 'nonce', a.nonce, 'fee', a.fee::text, 'status', a.status) ORDER BY a.attempt)
            FROM transfer_attempts a WHERE a.order_id = o.id) AS attempts
    FROM transfer_transactions o
    LEFT JOIN deposit_addresses da ON da.network = o.network AND da.address = o.from_address AND o.kind <> 'CUSTODIAL_SELL'
    LEFT JOIN custodial_accounts ca ON ca.network = o.network AND ca.address = o.from_address AND o.kind = 'CUSTODIAL_SELL'`;

const actor = systemActor("transfers");
const REBALANCE_RETRY_MINUTES = 10;

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

  const insertOrder = (tx: Tx, order: NewOrder): Promise<string> => insertOrderRow(tx, common.metrics, order);

  async function depositsSum(tx: Tx, network: string, refs: string[]): Promise<bigint> {
    const [r] = await tx<{ total: string }[]>`
      SELECT COALESCE(sum(amount), 0)::text AS total FROM deposits WHERE network = ${network} AND tx_ref = ANY(${refs})`;
    return BigInt(r!.total);
  }

  /** Confirmed deposits of the trade's own asset still sitting at its deposit address. */
  async function confirmedDeposits(tx: Tx, trade: Trade): Promise<{ amount: bigint; refs: string[] }> {
    const rows = await tx<{ tx_ref: string; amount: string }[]>`
      SELECT tx_ref, amount FROM deposits WHERE trade_id = ${trade.id} AND contract = ${trade.contract} AND status = 'CONFIRMED'`;
    return { amount: rows.reduce((s, r) => s + BigInt(r.amount), 0n), refs: rows.map((r) => r.tx_ref) };
  }

  /** Orders a move out of the trade's deposit address (a token's gas topped up first). */
  const fromDepositAddress = (tx: Tx, trade: Trade, kind: "SWEEP" | "REFUND", to: string, hot: string, amount: bigint, refs: string[], o2: { maxFee?: bigint; purpose?: TransferPurpose } = {}): Promise<string> =>
    orderFromUserAddress(tx, common.metrics, {
      network: trade.network, kind, tradeId: trade.id, from: trade.depositAddress, to, contract: trade.contract, amount,
      sourceTxRefs: refs, maxFee: o2.maxFee, purpose: o2.purpose, hot,
    });

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
        const id = await fromDepositAddress(tx, trade, "SWEEP", hot, hot, amount, refs, { maxFee });
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
           AND NOT EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.trade_id = t.id AND x.kind = 'REFUND' AND x.purpose = 'trade'
                             AND x.status <> 'FAILED')
         ORDER BY t.updated_at LIMIT ${o.batchSize} FOR UPDATE OF t SKIP LOCKED`;
      let n = 0;
      for (const row of pending) {
        const trade = tradeFromRow(row);
        const hot = await hotWallet(tx, trade.network);
        if (!hot) continue;
        // Where the funds are now: still at the deposit address unless a sweep got that far; a
        // custodial sell's are in the hot wallet. A pending sweep is superseded, with what waits on it.
        const [sweep] = await tx<{ id: string; status: TransferStatus }[]>`
          SELECT id, status FROM transfer_transactions WHERE trade_id = ${trade.id} AND kind = 'SWEEP'
             AND status NOT IN ('FAILED', 'SKIPPED') FOR UPDATE`;
        if (sweep?.status === "PENDING") {
          await tx`UPDATE transfer_transactions SET status = 'SKIPPED', reason = 'superseded by a refund', updated_at = now()
                    WHERE status = 'PENDING' AND (id = ${sweep.id} OR depends_on = ${sweep.id}
                          OR id = (SELECT depends_on FROM transfer_transactions WHERE id = ${sweep.id}))`;
        }
        const confirmed = await confirmedDeposits(tx, trade);
        // What other refunds (an over-payment's excess, late deposits) already give back is not refunded twice.
        const [other] = await tx<{ amount: string; refs: string[] }[]>`
          SELECT COALESCE(sum(amount) FILTER (WHERE purpose = 'excess'), 0)::text AS amount,
                 COALESCE(array_agg(r) FILTER (WHERE purpose = 'late_deposit'), '{}') AS refs
            FROM transfer_transactions LEFT JOIN LATERAL unnest(source_tx_refs) AS r ON purpose = 'late_deposit'
           WHERE trade_id = ${trade.id} AND kind = 'REFUND' AND purpose <> 'trade' AND status NOT IN ('FAILED', 'SKIPPED')`;
        const lateRefs = new Set(other!.refs);
        const refs = confirmed.refs.filter((r) => !lateRefs.has(r));
        const lateAmount = lateRefs.size === 0 ? 0n : await depositsSum(tx, trade.network, [...lateRefs]);
        const amount = confirmed.amount - lateAmount - BigInt(other!.amount);
        if (amount <= 0n || !trade.refundAddress) {
          await transition(tx, common.transitions, {
            tradeId: trade.id, from: "REFUND_PENDING", to: "MANUAL_REVIEW", actor,
            reason: amount <= 0n ? "nothing confirmed to refund" : "no refund address",
          });
          continue;
        }
        const fromHot = trade.source === "custodial" || (!!sweep && sweep.status !== "PENDING");
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

  /**
   * Gives back what a trade did not pay for: the excess of an over-payment (out of the hot wallet
   * once the sweep that brought it there is final) and deposits that arrived after the trade's funds
   * were already ordered somewhere (out of the deposit address). An amount below the asset's
   * minimum is not worth its network fee: the order is recorded as SKIPPED, so ops sees it.
   */
  async function planOwedBack(): Promise<number> {
    return sql.begin(async (tx) => {
      let n = 0;
      const excess = await tx<(TradeRow & { sweep_id: string; excess: string })[]>`
        SELECT t.*, s.id AS sweep_id, (s.amount - t.paid_amount)::text AS excess
          FROM instant_trades t
          JOIN transfer_transactions s ON s.trade_id = t.id AND s.kind = 'SWEEP' AND s.status NOT IN ('FAILED', 'SKIPPED')
         WHERE t.source = 'deposit' AND t.paid_amount IS NOT NULL AND s.amount > t.paid_amount AND t.refund_address IS NOT NULL
           AND t.status IN ('PAYMENT_CONFIRMED', 'PAYOUT_PENDING', 'COMPLETED')
           AND NOT EXISTS (SELECT 1 FROM transfer_transactions r WHERE r.trade_id = t.id AND r.kind = 'REFUND' AND r.purpose = 'excess'
                             AND r.status <> 'FAILED')
           AND (SELECT count(*) FROM transfer_transactions r WHERE r.trade_id = t.id AND r.kind = 'REFUND' AND r.purpose = 'excess') < ${o.maxSweepOrders}
         ORDER BY t.updated_at LIMIT ${o.batchSize} FOR UPDATE OF t SKIP LOCKED`;
      for (const row of excess) {
        const trade = tradeFromRow(row);
        const hot = await hotWallet(tx, trade.network);
        if (!hot) continue;
        const amount = BigInt(row.excess);
        const tooSmall = amount < minRefund(trade);
        const id = await insertOrder(tx, {
          network: trade.network, kind: "REFUND", purpose: "excess", tradeId: trade.id, from: hot, to: trade.refundAddress!,
          contract: trade.contract, amount, deductFee: !trade.contract, dependsOn: row.sweep_id,
          reason: tooSmall ? "below the asset's minimum amount: not worth a network fee" : "over-payment above the quoted amount",
        });
        if (tooSmall) await tx`UPDATE transfer_transactions SET status = 'SKIPPED', updated_at = now() WHERE id = ${id}`;
        logger.info({ trade_id: trade.id, order_id: id, amount: amount.toString(), skipped: tooSmall }, "Excess refund ordered");
        n++;
      }

      const late = await tx<TradeRow[]>`
        SELECT t.* FROM instant_trades t
         WHERE t.source = 'deposit' AND t.refund_address IS NOT NULL
           AND t.status IN ('PAYMENT_CONFIRMED', 'PAYOUT_PENDING', 'COMPLETED', 'REFUND_PENDING', 'REFUNDED')
           AND EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.trade_id = t.id AND x.kind IN ('SWEEP', 'REFUND')
                         AND x.purpose = 'trade' AND x.status <> 'FAILED')
           AND EXISTS (SELECT 1 FROM deposits d WHERE d.trade_id = t.id AND d.status = 'CONFIRMED' AND d.contract = t.contract
                         AND NOT EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.trade_id = t.id AND x.status <> 'FAILED'
                                           AND d.tx_ref = ANY(x.source_tx_refs))
                         AND (SELECT count(*) FROM transfer_transactions x WHERE x.trade_id = t.id AND x.purpose = 'late_deposit'
                                AND x.status = 'FAILED' AND d.tx_ref = ANY(x.source_tx_refs)) < ${o.maxSweepOrders})
         ORDER BY t.updated_at LIMIT ${o.batchSize} FOR UPDATE OF t SKIP LOCKED`;
      for (const row of late) {
        const trade = tradeFromRow(row);
        const hot = await hotWallet(tx, trade.network);
        if (!hot) continue;
        const deps = await tx<{ tx_ref: string; amount: string }[]>`
          SELECT d.tx_ref, d.amount FROM deposits d
           WHERE d.trade_id = ${trade.id} AND d.status = 'CONFIRMED' AND d.contract = ${trade.contract}
             AND NOT EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.trade_id = ${trade.id} AND x.status <> 'FAILED'
                               AND d.tx_ref = ANY(x.source_tx_refs))
             AND (SELECT count(*) FROM transfer_transactions x WHERE x.trade_id = ${trade.id} AND x.purpose = 'late_deposit'
                    AND x.status = 'FAILED' AND d.tx_ref = ANY(x.source_tx_refs)) < ${o.maxSweepOrders}
           ORDER BY d.id`;
        const amount = deps.reduce((a, d) => a + BigInt(d.amount), 0n);
        const refs = deps.map((d) => d.tx_ref);
        if (amount < minRefund(trade)) {
          // Recorded so that it is not planned again, and visible in the audit log.
          const id = await insertOrder(tx, {
            network: trade.network, kind: "REFUND", purpose: "late_deposit", tradeId: trade.id, from: trade.depositAddress,
            to: trade.refundAddress!, contract: trade.contract, amount, deductFee: !trade.contract, sourceTxRefs: refs,
            reason: "below the asset's minimum amount: not worth a network fee",
          });
          await tx`UPDATE transfer_transactions SET status = 'SKIPPED', updated_at = now() WHERE id = ${id}`;
          continue;
        }
        const id = await fromDepositAddress(tx, trade, "REFUND", trade.refundAddress!, hot, amount, refs, { purpose: "late_deposit" });
        logger.warn({ trade_id: trade.id, order_id: id, tx_refs: refs, amount: amount.toString() }, "Refund of a late deposit ordered");
        n++;
      }
      if (n > 0) await tx`SELECT pg_notify('ponte_transfers', '')`;
      return n;
    });
  }

  /** The smallest refund worth a network fee: the asset's minimum trade amount. */
  function minRefund(trade: Trade): bigint {
    return registry.find(trade.symbol, trade.network)?.minAmount ?? 1n;
  }

  /**
   * Moves a hot wallet's native balance above its ceiling to the cold wallet, from the balance its
   * agent last reported at a block after the previous rebalance was final. One in flight per
   * network; after a failure, the next try waits REBALANCE_RETRY_MINUTES.
   */
  async function planRebalances(): Promise<number> {
    return sql.begin(async (tx) => {
      const rows = await tx<{ network: string; hot: string; cold: string; ceiling: string; balance: string }[]>`
        SELECT h.network, h.address AS hot, c.address AS cold, h.ceiling::text AS ceiling, b.balance::text AS balance
          FROM system_wallets h
          JOIN system_wallets c ON c.network = h.network AND c.kind = 'cold'
          JOIN system_wallet_balances b ON b.network = h.network AND b.address = h.address AND b.contract = ''
         WHERE h.kind = 'hot' AND h.ceiling IS NOT NULL
           AND b.balance > h.ceiling + h.ceiling * ${o.rebalanceMarginBps.toString()}::numeric / 10000
           AND b.block_height > COALESCE((SELECT max(x.block_height) FROM transfer_transactions x
                                           WHERE x.network = h.network AND x.kind = 'REBALANCE' AND x.status = 'CONFIRMED'), -1)
           AND NOT EXISTS (SELECT 1 FROM transfer_transactions x WHERE x.network = h.network AND x.kind = 'REBALANCE'
                             AND (x.status IN ('PENDING', 'SIGNED', 'BROADCAST')
                                  OR (x.status IN ('FAILED', 'SKIPPED') AND x.updated_at > now() - make_interval(mins => ${REBALANCE_RETRY_MINUTES}))))
         FOR UPDATE OF h SKIP LOCKED`;
      for (const r of rows) {
        const amount = BigInt(r.balance) - BigInt(r.ceiling);
        const id = await insertOrder(tx, {
          network: r.network, kind: "REBALANCE", purpose: "rebalance", tradeId: null, from: r.hot, to: r.cold, contract: "",
          amount, deductFee: true, reason: `hot wallet above its ceiling of ${r.ceiling}`,
        });
        logger.info({ network: r.network, order_id: id, amount: amount.toString() }, "Rebalance to cold ordered");
      }
      if (rows.length > 0) await tx`SELECT pg_notify('ponte_transfers', '')`;
      return rows.length;
    });
  }

  /**
   * A custodial sell's transfer is its deposit: broadcast → DEPOSIT_DETECTED; final on chain (the
   * agent's finality rule) → recorded as the trade's confirmed deposit and PAYMENT_CONFIRMED; failed
   * or skipped → nothing left the user's wallet, so the trade is CANCELLED.
   */
  async function custodialProgress(
    tx: Tx, network: string, order: { id: string; trade_id: string | null; amount: string }, status: TransferStatus,
    txHash: string, blockHeight: bigint, reason: string,
  ): Promise<void> {
    const trade = await lockedTrade(tx, order.trade_id!);
    if (!trade || trade.source !== "custodial") return;
    const amount = BigInt(order.amount);
    const agent = { kind: "agent", id: network } as const;
    const data = { order_id: order.id, tx_hash: txHash };
    let status0 = trade.status;
    const step = async (to: Trade["status"], why: string, set?: { received_amount: bigint; confirmed_amount?: bigint; paid_amount?: bigint }) => {
      await transition(tx, common.transitions, { tradeId: trade.id, from: status0, to, actor: to === "CANCELLED" ? actor : agent, reason: why, data, set });
      status0 = to;
    };
    if ((status === "BROADCAST" || status === "CONFIRMED") && status0 === "PENDING") {
      await step("DEPOSIT_DETECTED", "custodial transfer sent", { received_amount: amount });
    }
    if (status === "CONFIRMED" && status0 === "DEPOSIT_DETECTED") {
      await tx`INSERT INTO deposits (network, tx_ref, tx_hash, address, contract, amount, trade_id, status, block_height, confirmations)
               VALUES (${network}, ${`${txHash}:custodial`}, ${txHash}, ${trade.depositAddress}, ${trade.contract}, ${amount.toString()},
                       ${trade.id}, 'CONFIRMED', ${blockHeight > 0n ? blockHeight.toString() : null}, 0)
               ON CONFLICT (network, tx_ref) DO NOTHING`;
      await step("PAYMENT_CONFIRMED", "custodial transfer final", { received_amount: amount, confirmed_amount: amount, paid_amount: amount });
    }
    if (status === "FAILED" || status === "SKIPPED") {
      if (status0 === "DEPOSIT_DETECTED") await step("PENDING", "custodial transfer did not land");
      if (status0 === "PENDING") await step("CANCELLED", `custodial transfer ${status === "FAILED" ? "failed" : "skipped"}: ${reason || "unknown"}`);
    }
  }

  async function lockedTrade(tx: Tx, id: string): Promise<Trade | undefined> {
    const [row] = await tx<TradeRow[]>`SELECT * FROM instant_trades WHERE id = ${id} FOR UPDATE`;
    return row ? tradeFromRow(row) : undefined;
  }

  const planOnce = async (): Promise<number> =>
    (await planSweeps()) + (await planRefunds()) + (await planOwedBack()) + (await planRebalances());

  const loop = workerLoop({
    worker: "transfers",
    intervalMs: o.intervalMs,
    metrics: common.metrics,
    logger,
    failure: "Transfer planning failed",
    pass: async () => (await planOnce()) >= o.batchSize,
  });

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

    /** The system wallets' balances at a block, as the agent read them; an older reading never replaces a newer one. */
    async reportBalances(network: string, blockHeight: bigint, balances: { address: string; contract: string; balance: bigint }[]): Promise<void> {
      if (balances.length === 0) return;
      await sql`
        INSERT INTO system_wallet_balances AS b (network, address, contract, balance, block_height)
        SELECT ${network}, x.address, x.contract, x.balance::numeric, ${blockHeight.toString()}::bigint
          FROM unnest(${balances.map((b) => b.address)}::text[], ${balances.map((b) => b.contract)}::text[],
                      ${balances.map((b) => b.balance.toString())}::text[]) AS x(address, contract, balance)
        ON CONFLICT (network, address, contract) DO UPDATE
           SET balance = EXCLUDED.balance, block_height = EXCLUDED.block_height, updated_at = now()
         WHERE b.block_height <= EXCLUDED.block_height`;
    },

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
      // Only the trade's own refund settles it; an excess or a late deposit given back does not.
      if (r.status === "CONFIRMED" && row.kind === "REFUND" && row.purpose === "trade" && row.trade_id) {
        const trade = await lockedTrade(tx, row.trade_id);
        if (trade?.status === "REFUND_PENDING") {
          await transition(tx, common.transitions, {
            tradeId: trade.id, from: "REFUND_PENDING", to: "REFUNDED", actor: { kind: "agent", id: network },
            reason: "refund final on chain", data: { order_id: row.id, tx_hash: r.attempt?.txHash ?? "" },
          });
        }
      }
      if (row.kind === "CUSTODIAL_SELL" && row.trade_id) {
        await custodialProgress(tx, network, row, r.status, r.attempt?.txHash ?? "", r.blockHeight, r.reason);
      }
      if (r.status === "FAILED" || r.status === "SKIPPED") {
        // What waited on this order cannot happen now.
        const dependents = await tx<{ id: string; kind: TransferKind; trade_id: string | null; amount: string }[]>`
          UPDATE transfer_transactions SET status = 'FAILED', reason = ${`the ${row.kind.toLowerCase().replace("_", " ")} it waited on ${r.status === "FAILED" ? "failed" : "was skipped"}`},
                 updated_at = now()
           WHERE depends_on = ${row.id} AND status = 'PENDING'
          RETURNING id, kind, trade_id, amount::text`;
        for (const d of dependents) {
          common.metrics.transfers.inc({ kind: d.kind, status: "FAILED" });
          if (d.kind === "CUSTODIAL_SELL" && d.trade_id) {
            await custodialProgress(tx, network, { id: d.id, trade_id: d.trade_id, amount: d.amount }, "FAILED", "", 0n, `its gas top-up ${r.status === "FAILED" ? "failed" : "was skipped"}`);
          }
        }
      }
      if (r.status === "FAILED") {
        log.error({ reason: r.reason }, "Transfer failed");
        if (row.kind === "REFUND" && row.purpose === "trade" && row.trade_id) {
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

    start: loop.start,
    stop: loop.stop,
  };
}
