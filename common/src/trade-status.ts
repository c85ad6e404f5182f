// The trade lifecycle's states, in one place for every package. The coordinator owns the
// transitions between them (coordinator/src/trade/states.ts); the gateway only needs the names
// (the history filter and the OpenAPI document).
export const TRADE_STATUSES = [
  "PENDING",
  "DEPOSIT_DETECTED",
  "PAYMENT_CONFIRMED",
  "UNDERPAID",
  "PAYOUT_PENDING",
  "COMPLETED",
  "REFUND_PENDING",
  "REFUNDED",
  "EXPIRED",
  "CANCELLED",
  "MANUAL_REVIEW",
] as const;

export type TradeStatus = (typeof TRADE_STATUSES)[number];
