import { settle, type Logger, type Tolerance } from "@ponte/common";
import type { Fragment, Tx } from "../db/index.js";
import { confirmationsFor } from "../quote/registry.js";
import type { AssetRegistry } from "../quote/types.js";
import type { Actor } from "../trade/actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "../trade/model.js";
import { transitionLocked, type TransitionArgs, type TransitionContext } from "../trade/transition.js";

export interface EvaluateContext {
  registry: AssetRegistry;
  transitions: TransitionContext;
  tolerance: Tolerance;
  logger: Logger;
  onLateDeposit?: (network: string) => void;
}

interface DepositRow {
  tx_ref: string;
  amount: string;
  status: string;
  block_height: bigint | null;
  late: boolean;
}

/**
 * Moves one trade to where its deposits put it. Called (in the reporting transaction) for every
 * trade whose deposits changed or are not yet final; idempotent, so calling it again is harmless.
 *
 * A deposit is final when the agent's finality rule holds (block at or below the reported
 * finalized height: status CONFIRMED) and the asset's confirmation count for the trade's BRL
 * value holds too. Only deposits of the trade's own asset count; a shortfall waits for more
 * deposits until the deadline, then the trade is UNDERPAID.
 */
export async function evaluateTrade(
  tx: Tx,
  ctx: EvaluateContext,
  tradeId: string,
  headHeight: bigint,
  actor: Actor,
): Promise<Trade | undefined> {
  return (await evaluateTrades(tx, ctx, [tradeId], headHeight, actor)).get(tradeId);
}

/**
 * evaluateTrade for several trades at once: they are locked together in id order (two
 * reporters never deadlock) and their deposits read in one query, then every trade's steps are
 * decided in memory and all of them written by one `transitionLocked` — a handful of statements
 * per report instead of several per trade and step (bench/README.md, B4).
 */
export async function evaluateTrades(
  tx: Tx,
  ctx: EvaluateContext,
  tradeIds: Iterable<string>,
  headHeight: bigint,
  actor: Actor,
): Promise<Map<string, Trade>> {
  const ids = [...new Set(tradeIds)].sort();
  if (ids.length === 0) return new Map();
  return evaluateLocked(tx, ctx, await lockForEvaluation(tx, tx`SELECT unnest(${ids}::text[])`), headHeight, actor);
}

export interface LockedForEvaluation {
  trades: (TradeRow & { past_deadline: boolean; tx_now: Date })[];
  deposits: (DepositRow & { trade_id: string; contract: string })[];
}

/**
 * Locks the trades whose ids `ids` selects (a query fragment: run twice, so it must select the
 * same trades both times while they are locked) in id order and reads their deposits after the
 * lock is granted; both statements are sent at once (they run in the order sent). A caller may
 * pipeline this behind its own writes: the fragment sees them.
 */
export async function lockForEvaluation(tx: Tx, ids: Fragment): Promise<LockedForEvaluation> {
  const [trades, deposits] = await Promise.all([
    tx<LockedForEvaluation["trades"]>`
      SELECT *, expires_at <= now() AS past_deadline, now() AS tx_now FROM instant_trades
       WHERE id IN (${ids}) ORDER BY id FOR UPDATE`.execute(),
    tx<LockedForEvaluation["deposits"]>`
      SELECT trade_id, contract, tx_ref, amount, status, block_height, late FROM deposits WHERE trade_id IN (${ids})`.execute(),
  ]);
  return { trades, deposits };
}

/** The decisions and writes of `evaluateTrades`, for trades locked by `lockForEvaluation`. */
export async function evaluateLocked(
  tx: Tx,
  ctx: EvaluateContext,
  locked: LockedForEvaluation,
  headHeight: bigint,
  actor: Actor,
): Promise<Map<string, Trade>> {
  const out = new Map<string, Trade>();
  const byTrade = new Map<string, (DepositRow & { contract: string })[]>();
  for (const d of locked.deposits) {
    const list = byTrade.get(d.trade_id);
    if (list) list.push(d);
    else byTrade.set(d.trade_id, [d]);
  }
  const before = new Map<string, Trade>();
  const steps: TransitionArgs[] = [];
  const progress: { id: string; received: bigint; confirmed: bigint }[] = [];
  for (const row of locked.trades) {
    let trade = tradeFromRow(row);
    before.set(trade.id, trade);
    // Only deposits of the trade's own asset count. They do not change while it steps.
    const deposits = (byTrade.get(trade.id) ?? []).filter((d) => d.contract === trade.contract);
    // A deposit found during a catch-up can be seen and final in one report: keep stepping
    // (PENDING → DEPOSIT_DETECTED → PAYMENT_CONFIRMED) in memory until the trade stops moving;
    // the steps are written together below.
    for (let step = 0; step < 3; step++) {
      const d = decide(ctx, trade, row.past_deadline, deposits, headHeight);
      if (d.kind === "move") {
        steps.push({ tradeId: trade.id, from: trade.status, actor, ...d.step });
        trade = stepped(trade, d.step);
        continue;
      }
      if (d.kind === "progress") progress.push({ id: trade.id, received: d.received, confirmed: d.confirmed });
      break;
    }
    out.set(trade.id, trade);
  }
  const now = locked.trades[0]?.tx_now;
  if (!now) return out;
  // Progress within a state (a second partial deposit, a confirmation) is not a transition.
  // Sent with the transitions: one round trip for all the writes.
  const [moved] = await Promise.all([
    transitionLocked(tx, ctx.transitions, steps, { trades: before, now }),
    progress.length > 0
      ? tx`UPDATE instant_trades t SET received_amount = p.received, confirmed_amount = p.confirmed, updated_at = now()
             FROM unnest(${progress.map((p) => p.id)}::text[], ${progress.map((p) => p.received.toString())}::numeric[],
                         ${progress.map((p) => p.confirmed.toString())}::numeric[]) AS p(id, received, confirmed)
            WHERE t.id = p.id`.execute()
      : undefined,
  ]);
  for (const t of moved) out.set(t.id, t);
  return out;
}

/** The trade as a step will leave it (what `decide` needs to take the next one). */
function stepped(t: Trade, s: Pick<TransitionArgs, "to" | "set">): Trade {
  return {
    ...t,
    status: s.to,
    version: t.version + 1n,
    receivedAmount: s.set?.received_amount ?? t.receivedAmount,
    confirmedAmount: s.set?.confirmed_amount ?? t.confirmedAmount,
    paidAmount: s.set?.paid_amount ?? t.paidAmount,
  };
}

type Decision =
  | { kind: "move"; step: Pick<TransitionArgs, "to" | "reason" | "data" | "set"> }
  | { kind: "progress"; received: bigint; confirmed: bigint }
  | { kind: "none" };

/** Where a trade's deposits put it next, from what is in memory (no I/O). */
function decide(ctx: EvaluateContext, trade: Trade, pastDeadline: boolean, deposits: DepositRow[], headHeight: bigint): Decision {
  const asset = ctx.registry.find(trade.symbol, trade.network);
  const required = BigInt(asset ? confirmationsFor(asset, trade.fiatCentavos) : 1);
  const live = deposits.filter((d) => (d.status === "SEEN" || d.status === "CONFIRMED") && !d.late);
  const isFinal = (d: DepositRow) =>
    d.status === "CONFIRMED" && d.block_height !== null && headHeight - d.block_height + 1n >= required;
  const received = live.reduce((s, d) => s + BigInt(d.amount), 0n);
  const confirmed = live.filter(isFinal).reduce((s, d) => s + BigInt(d.amount), 0n);
  const move = (to: Trade["status"], reason: string, data: Record<string, string> = {}, paid?: bigint): Decision => ({
    kind: "move",
    step: {
      to,
      reason,
      data: { received_amount: received.toString(), confirmed_amount: confirmed.toString(), ...data },
      set: { received_amount: received, confirmed_amount: confirmed, ...(paid === undefined ? {} : { paid_amount: paid }) },
    },
  });

  switch (trade.status) {
    case "PENDING":
      if (received > 0n) return move("DEPOSIT_DETECTED", "deposit seen", { tx_refs: live.map((d) => d.tx_ref).join(",") });
      break;
    case "DEPOSIT_DETECTED": {
      if (received === 0n) return move("PENDING", "deposit removed by a reorg or replacement");
      if (confirmed === received) {
        const terms = { decimals: trade.decimals, price: trade.price, spreadBps: trade.spreadBps, networkFeeBps: trade.networkFeeBps };
        const s = settle(confirmed, trade.cryptoAmount, terms, ctx.tolerance);
        if (s.kind !== "UNDERPAID") {
          // What the payout covers; an over-payment's excess is refunded once the sweep is final.
          return move(
            "PAYMENT_CONFIRMED",
            "deposit final",
            { payout_centavos: s.payCentavos.toString(), excess_amount: s.refundAmount.toString() },
            confirmed - s.refundAmount,
          );
        }
        if (pastDeadline) return move("UNDERPAID", "deposit final but short of the quoted amount", { shortfall: (trade.cryptoAmount - confirmed).toString() });
      }
      break;
    }
    default:
      break;
  }
  if (trade.receivedAmount !== received || trade.confirmedAmount !== confirmed) return { kind: "progress", received, confirmed };
  return { kind: "none" };
}
