import { settle, type Logger, type Tolerance } from "@ponte/common";
import type { Tx } from "../db/index.js";
import { confirmationsFor } from "../quote/registry.js";
import type { AssetRegistry } from "../quote/types.js";
import type { Actor } from "../trade/actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "../trade/model.js";
import { transition, type TransitionContext } from "../trade/transition.js";

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
  // A deposit found during a catch-up can be seen and final in one report: keep stepping
  // (PENDING → DEPOSIT_DETECTED → PAYMENT_CONFIRMED) until the trade stops moving.
  let last: { trade: Trade; moved: boolean } | undefined;
  for (let step = 0; step < 3; step++) {
    last = await evaluateOnce(tx, ctx, tradeId, headHeight, actor);
    if (!last?.moved) break;
  }
  return last?.trade;
}

async function evaluateOnce(
  tx: Tx,
  ctx: EvaluateContext,
  tradeId: string,
  headHeight: bigint,
  actor: Actor,
): Promise<{ trade: Trade; moved: boolean } | undefined> {
  const [row] = await tx<(TradeRow & { past_deadline: boolean })[]>`
    SELECT *, expires_at <= now() AS past_deadline FROM instant_trades WHERE id = ${tradeId} FOR UPDATE`;
  if (!row) return undefined;
  const trade = tradeFromRow(row);
  const deposits = await tx<DepositRow[]>`
    SELECT tx_ref, amount, status, block_height, late FROM deposits
     WHERE trade_id = ${tradeId} AND contract = ${trade.contract}`;
  const asset = ctx.registry.find(trade.symbol, trade.network);
  const required = BigInt(asset ? confirmationsFor(asset, trade.fiatCentavos) : 1);
  const live = deposits.filter((d) => (d.status === "SEEN" || d.status === "CONFIRMED") && !d.late);
  const isFinal = (d: DepositRow) =>
    d.status === "CONFIRMED" && d.block_height !== null && headHeight - d.block_height + 1n >= required;
  const received = live.reduce((s, d) => s + BigInt(d.amount), 0n);
  const confirmed = live.filter(isFinal).reduce((s, d) => s + BigInt(d.amount), 0n);
  const move = async (to: Trade["status"], reason: string, data: Record<string, string> = {}, paid?: bigint) => ({
    moved: true,
    trade: await transition(tx, ctx.transitions, {
      tradeId,
      from: trade.status,
      to,
      actor,
      reason,
      data: { received_amount: received.toString(), confirmed_amount: confirmed.toString(), ...data },
      set: { received_amount: received, confirmed_amount: confirmed, ...(paid === undefined ? {} : { paid_amount: paid }) },
    }),
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
        if (row.past_deadline) return move("UNDERPAID", "deposit final but short of the quoted amount", { shortfall: (trade.cryptoAmount - confirmed).toString() });
      }
      break;
    }
    default:
      break;
  }
  if (trade.receivedAmount !== received || trade.confirmedAmount !== confirmed) {
    // Progress within a state (a second partial deposit, a confirmation) is not a transition.
    await tx`UPDATE instant_trades SET received_amount = ${received.toString()}, confirmed_amount = ${confirmed.toString()}, updated_at = now()
              WHERE id = ${tradeId}`;
  }
  return { trade, moved: false };
}
