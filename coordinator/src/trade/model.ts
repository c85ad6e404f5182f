import { parsePrice } from "@ponte/common";
import { isTradeStatus, type TradeStatus } from "./states.js";

export interface Trade {
  id: string;
  userId: string;
  quoteId: string;
  status: TradeStatus;
  version: bigint;
  source: "deposit" | "custodial";
  network: string;
  symbol: string;
  decimals: number;
  contract: string;
  cryptoAmount: bigint;
  fiatCentavos: bigint;
  price: bigint;
  spreadBps: bigint;
  networkFeeBps: bigint;
  depositAddress: string;
  refundAddress: string | null;
  receivedAmount: bigint;
  confirmedAmount: bigint;
  /** The crypto amount the payout covers; null until PAYMENT_CONFIRMED (or when an admin confirmed). */
  paidAmount: bigint | null;
  expiresAt: Date;
  monitoringUntil: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** The row as the postgres client returns it (int8 → bigint, numeric → string). */
export interface TradeRow {
  id: string;
  user_id: string;
  quote_id: string;
  status: string;
  version: bigint;
  source: string;
  network: string;
  symbol: string;
  decimals: number;
  contract: string;
  crypto_amount: string;
  fiat_amount_centavos: bigint;
  price: string;
  spread_bps: number;
  network_fee_bps: number;
  deposit_address: string;
  refund_address: string | null;
  received_amount: string;
  confirmed_amount: string;
  paid_amount: string | null;
  expires_at: Date;
  monitoring_until: Date;
  created_at: Date;
  updated_at: Date;
}

export function tradeFromRow(r: TradeRow): Trade {
  if (!isTradeStatus(r.status)) throw new Error(`Unknown trade status in the database: ${r.status}`);
  return {
    id: r.id,
    userId: r.user_id,
    quoteId: r.quote_id,
    status: r.status,
    version: BigInt(r.version),
    source: r.source === "custodial" ? "custodial" : "deposit",
    network: r.network,
    symbol: r.symbol,
    decimals: r.decimals,
    contract: r.contract,
    cryptoAmount: BigInt(r.crypto_amount),
    fiatCentavos: BigInt(r.fiat_amount_centavos),
    price: parsePrice(trimNumeric(r.price)),
    spreadBps: BigInt(r.spread_bps),
    networkFeeBps: BigInt(r.network_fee_bps),
    depositAddress: r.deposit_address,
    refundAddress: r.refund_address,
    receivedAmount: BigInt(r.received_amount),
    confirmedAmount: BigInt(r.confirmed_amount),
    paidAmount: r.paid_amount === null || r.paid_amount === undefined ? null : BigInt(r.paid_amount),
    expiresAt: r.expires_at,
    monitoringUntil: r.monitoring_until,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** numeric(60,18) comes back as "5.120000000000000000"; parsePrice takes up to 18 places. */
export const trimNumeric = (s: string): string => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
