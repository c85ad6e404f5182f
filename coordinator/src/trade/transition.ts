import { newId, PonteError } from "@ponte/common";
import { eventsv1 } from "@ponte/proto";
import type { Tx } from "../db/index.js";
import { actorString, type Actor } from "./actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "./model.js";
import { assertTransition, type TradeStatus } from "./states.js";

export interface TransitionContext {
  subjectPrefix: string;
  onTransition?: (from: TradeStatus | null, to: TradeStatus, actor: Actor) => void;
}

export interface TransitionArgs {
  tradeId: string;
  from: TradeStatus;
  to: TradeStatus;
  actor: Actor;
  reason: string;
  data?: Record<string, string>;
  /** Extra columns to set in the same guarded UPDATE (amounts the transition depends on). */
  set?: Partial<Record<"received_amount" | "confirmed_amount" | "paid_amount", bigint>>;
}

/**
 * The one way trade state changes: checks the table, then a single guarded
 * UPDATE … WHERE status = $from, the history row and the outbox event, all in `tx`.
 * A concurrent change makes the UPDATE match nothing → STALE_STATE (409) with the status now.
 */
export async function transition(tx: Tx, ctx: TransitionContext, a: TransitionArgs): Promise<Trade> {
  assertTransition(a.from, a.to, a.actor.kind, a.tradeId);
  const received = a.set?.received_amount;
  const confirmed = a.set?.confirmed_amount;
  const paid = a.set?.paid_amount;
  const rows = await tx<TradeRow[]>`
    UPDATE instant_trades
       SET status = ${a.to}, version = version + 1, updated_at = now(),
           received_amount = COALESCE(${received === undefined ? null : received.toString()}::numeric, received_amount),
           confirmed_amount = COALESCE(${confirmed === undefined ? null : confirmed.toString()}::numeric, confirmed_amount),
           paid_amount = COALESCE(${paid === undefined ? null : paid.toString()}::numeric, paid_amount)
     WHERE id = ${a.tradeId} AND status = ${a.from}
 RETURNING *`;
  const row = rows[0];
  if (!row) {
    const now = await tx<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${a.tradeId}`;
    if (now.length === 0) throw new PonteError("TRADE_NOT_FOUND", "Trade not found", { trade_id: a.tradeId });
    throw new PonteError("STALE_STATE", `The trade is ${now[0]!.status}, not ${a.from}`, {
      trade_id: a.tradeId,
      status: now[0]!.status,
      expected: a.from,
    });
  }
  const trade = tradeFromRow(row);
  await record(tx, ctx, trade, a.from, a.actor, a.reason, a.data ?? {});
  ctx.onTransition?.(a.from, a.to, a.actor);
  return trade;
}

/** The creation of a trade is its first history row and event (from = null, version 1). */
export async function recordCreated(tx: Tx, ctx: TransitionContext, trade: Trade, actor: Actor): Promise<void> {
  await record(tx, ctx, trade, null, actor, "created", { quote_id: trade.quoteId });
  ctx.onTransition?.(null, trade.status, actor);
}

async function record(
  tx: Tx,
  ctx: TransitionContext,
  trade: Trade,
  from: TradeStatus | null,
  actor: Actor,
  reason: string,
  data: Record<string, string>,
): Promise<void> {
  const [h] = await tx<{ created_at: Date }[]>`
    INSERT INTO instant_trade_history (trade_id, version, from_status, to_status, actor, reason, data)
    VALUES (${trade.id}, ${trade.version.toString()}, ${from}, ${trade.status}, ${actorString(actor)}, ${reason}, ${tx.json(data)})
    RETURNING created_at`;
  const eventId = newId("event");
  const event = eventsv1.TradeEvent.encode({
    eventId,
    tradeId: trade.id,
    userId: trade.userId,
    network: trade.network,
    symbol: trade.symbol,
    fromStatus: from ?? "",
    toStatus: trade.status,
    version: trade.version,
    actor: actorString(actor),
    reason,
    occurredAt: h!.created_at.toISOString(),
    cryptoAmount: trade.cryptoAmount.toString(),
    fiatAmountCentavos: trade.fiatCentavos.toString(),
    depositAddress: trade.depositAddress,
    data,
  }).finish();
  const subject = `${ctx.subjectPrefix}.${subjectToken(trade.network)}.${trade.status.toLowerCase()}`;
  await tx`INSERT INTO outbox (event_id, trade_id, subject, payload)
           VALUES (${eventId}, ${trade.id}, ${subject}, ${Buffer.from(event)})`;
  await tx`SELECT pg_notify('ponte_outbox', '')`;
  // Wake the payout workers at once rather than at their next poll.
  if (trade.status === "PAYMENT_CONFIRMED") await tx`SELECT pg_notify('ponte_payouts', '')`;
}

/** NATS subject tokens may not contain dots, spaces or wildcards. */
const subjectToken = (s: string): string => s.replace(/[.\s*>]/g, "_");
