import { PonteError, TRADE_STATUSES, type TradeStatus } from "@ponte/common";

export { TRADE_STATUSES, type TradeStatus };
export const isTradeStatus = (s: string): s is TradeStatus => (TRADE_STATUSES as readonly string[]).includes(s);

/** Who may cause a transition. `agent` = an observation from a chain agent; `system` = a worker. */
export type ActorKind = "system" | "agent" | "user" | "admin";

export const FINAL_STATUSES: readonly TradeStatus[] = ["COMPLETED", "REFUNDED", "EXPIRED", "CANCELLED"];
export const isFinal = (s: TradeStatus): boolean => FINAL_STATUSES.includes(s);

interface Rule {
  from: TradeStatus;
  to: TradeStatus;
  by: readonly ActorKind[];
}

const auto: readonly ActorKind[] = ["system", "agent"];

// DESIGN.md §4, the one table. Anything not listed is refused.
const RULES: readonly Rule[] = [
  { from: "PENDING", to: "DEPOSIT_DETECTED", by: auto },
  { from: "PENDING", to: "EXPIRED", by: ["system"] },
  // system: a custodial sell whose transfer failed (nothing left the user's wallet)
  { from: "PENDING", to: "CANCELLED", by: ["user", "admin", "system"] },
  { from: "DEPOSIT_DETECTED", to: "PENDING", by: auto },
  { from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", by: [...auto, "admin"] },
  { from: "DEPOSIT_DETECTED", to: "UNDERPAID", by: auto },
  { from: "PAYMENT_CONFIRMED", to: "PAYOUT_PENDING", by: ["system"] },
  { from: "PAYOUT_PENDING", to: "COMPLETED", by: ["system"] },
  { from: "PAYOUT_PENDING", to: "REFUND_PENDING", by: ["system"] },
  { from: "UNDERPAID", to: "REFUND_PENDING", by: ["system"] },
  { from: "EXPIRED", to: "REFUND_PENDING", by: auto },
  { from: "CANCELLED", to: "REFUND_PENDING", by: auto },
  { from: "REFUND_PENDING", to: "REFUNDED", by: auto },
  // any non-final → MANUAL_REVIEW when a check fails
  ...TRADE_STATUSES.filter((s) => !isFinal(s) && s !== "MANUAL_REVIEW").map(
    (from): Rule => ({ from, to: "MANUAL_REVIEW", by: ["system", "agent", "admin"] }),
  ),
  { from: "MANUAL_REVIEW", to: "PAYMENT_CONFIRMED", by: ["admin"] },
  { from: "MANUAL_REVIEW", to: "COMPLETED", by: ["admin"] },
  { from: "MANUAL_REVIEW", to: "REFUND_PENDING", by: ["admin"] },
];

const index = new Map<string, readonly ActorKind[]>(RULES.map((r) => [`${r.from}>${r.to}`, r.by]));

export const allowedTransitions = (): readonly Rule[] => RULES;

export function canTransition(from: TradeStatus, to: TradeStatus, by: ActorKind): boolean {
  return index.get(`${from}>${to}`)?.includes(by) ?? false;
}

export function assertTransition(from: TradeStatus, to: TradeStatus, by: ActorKind, tradeId: string): void {
  if (!canTransition(from, to, by)) {
    throw new PonteError("INVALID_STATE", `A trade in ${from} cannot move to ${to}`, { trade_id: tradeId, status: from, to, actor: by });
  }
}
