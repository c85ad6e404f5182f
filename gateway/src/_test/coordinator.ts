import { PonteError } from "@ponte/common";
import type { Coordinator } from "../coordinator/index.js";
import type { TradeJson } from "../schemas.js";
import { TRADE_ID } from "./app.js";

const unavailable = () => Promise.reject(new PonteError("COORDINATOR_UNAVAILABLE", "stub: not answering"));

/**
 * A Coordinator whose every call fails like an unreachable one, except the methods given. For
 * behaviour that needs answers in a unit test (a live stream); the real thing runs in test/src/e2e.
 */
export function stubCoordinator(methods: Partial<Coordinator>): Coordinator {
  const down = {
    ping: unavailable, listAssets: unavailable, createQuote: unavailable, createTrade: unavailable,
    getTrade: unavailable, cancelTrade: unavailable, listTrades: unavailable, getAuditLog: unavailable,
    adminConfirmPayment: unavailable, adminComplete: unavailable, putPixKey: unavailable,
    getPixKey: unavailable, ingestPixWebhook: unavailable, close: () => {},
  } satisfies Coordinator;
  return { ...down, ...methods };
}

/** A trade as GET /{trade_id} answers it. */
export function tradeJson(o: Partial<TradeJson> = {}): TradeJson {
  return {
    id: TRADE_ID,
    user_id: "u1",
    quote_id: "qte_06h2d176hjnn0qayzpmjs9vyew",
    status: "PENDING",
    symbol: "USDT",
    network: "anvil",
    crypto_amount: "100.5",
    fiat_amount: "525.06",
    price: "5.4",
    deposit_address: "0x2b5ad5c4795c026514f8317c7a215e218dccd6cf",
    refund_address: "0x8ba1f109551bd432803012645ac136ddd64dba72",
    expires_at: "2026-11-29T12:30:00.000Z",
    monitoring_until: "2026-11-30T12:00:00.000Z",
    created_at: "2026-11-29T12:00:00.000Z",
    updated_at: "2026-11-29T12:00:00.000Z",
    version: 1,
    received_amount: "0",
    confirmed_amount: "0",
    payout_amount: null,
    payout_status: null,
    payout_end_to_end_id: null,
    ...o,
  };
}
