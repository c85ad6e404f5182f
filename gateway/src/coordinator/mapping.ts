import { formatBrl, formatUnits } from "@ponte/common";
import type { tradev1 } from "@ponte/proto";
import type { AssetJson, AuditLogJson, CustodialAccountJson, PixKeyJson, QuoteJson, TradeJson, TradePageJson } from "../schemas.js";

// Proto → the frontend's JSON. The coordinator speaks base units and centavos; the frontend
// speaks human decimals. Proto types stop here.

const units = (baseUnits: string, decimals: number): string => formatUnits(BigInt(baseUnits || "0"), decimals);
const brl = (centavos: string): string => formatBrl(BigInt(centavos || "0"));
/** Basis points → a percentage ("300" → "3", "25" → "0.25"). */
const percent = (bps: string): string => formatUnits(BigInt(bps || "0"), 2);
const orNull = (s: string): string | null => (s === "" ? null : s);

export function assetToJson(a: tradev1.Asset): AssetJson {
  return {
    symbol: a.symbol,
    network: a.network,
    name: a.name,
    decimals: a.decimals,
    contract: orNull(a.contract),
    min_amount: units(a.minAmount, a.decimals),
    max_amount: units(a.maxAmount, a.decimals),
    confirmations: a.confirmations,
    enabled: a.enabled,
    spread_percent: percent(a.spreadBps),
    network_fee_percent: percent(a.networkFeeBps),
    price: orNull(a.price),
  };
}

export function quoteToJson(q: tradev1.Quote): QuoteJson {
  return {
    quote_id: q.quoteId,
    symbol: q.symbol,
    network: q.network,
    crypto_amount: units(q.cryptoAmount, q.decimals),
    fiat_amount: brl(q.fiatAmountCentavos),
    price: q.price,
    spread: brl(q.spreadCentavos),
    network_fee: brl(q.networkFeeCentavos),
    spread_percent: percent(q.spreadBps),
    network_fee_percent: percent(q.networkFeeBps),
    expires_at: q.expiresAt,
    created_at: q.createdAt,
  };
}

export function tradeToJson(t: tradev1.Trade): TradeJson {
  return {
    id: t.id,
    user_id: t.userId,
    quote_id: t.quoteId,
    status: t.status,
    symbol: t.symbol,
    network: t.network,
    crypto_amount: units(t.cryptoAmount, t.decimals),
    fiat_amount: brl(t.fiatAmountCentavos),
    price: t.price,
    deposit_address: t.depositAddress,
    refund_address: orNull(t.refundAddress),
    expires_at: t.expiresAt,
    monitoring_until: t.monitoringUntil,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    version: Number(t.version),
    received_amount: units(t.receivedAmount, t.decimals),
    confirmed_amount: units(t.confirmedAmount, t.decimals),
    payout_amount: t.payoutAmountCentavos === "" ? null : brl(t.payoutAmountCentavos),
    payout_status: orNull(t.payoutStatus),
    payout_end_to_end_id: orNull(t.payoutEndToEndId),
    source: t.source === "custodial" ? "custodial" : "deposit",
  };
}

export function tradePageToJson(r: tradev1.ListTradesResponse): TradePageJson {
  return { trades: r.trades.map(tradeToJson), next_cursor: orNull(r.nextCursor) };
}

export function auditLogToJson(log: tradev1.AuditLog): AuditLogJson {
  return {
    trade_id: log.tradeId,
    entries: log.entries.map((e) => ({
      id: Number(e.id),
      from_status: orNull(e.fromStatus),
      to_status: e.toStatus,
      actor: e.actor,
      reason: orNull(e.reason),
      created_at: e.createdAt,
      version: Number(e.version),
      data: { ...e.data },
    })),
    transfers: log.transfers.map((t) => ({
      order_id: t.orderId,
      kind: t.kind,
      status: t.status,
      from_address: t.fromAddress,
      to_address: t.toAddress,
      contract: orNull(t.contract),
      amount_base_units: t.amount,
      tx_hash: orNull(t.txHash),
      fee_base_units: orNull(t.fee),
      attempts: t.attempts,
      purpose: t.purpose || "trade",
      reason: orNull(t.reason),
      created_at: t.createdAt,
      updated_at: t.updatedAt,
    })),
  };
}

export function pixKeyToJson(k: tradev1.PixKey): PixKeyJson {
  return {
    user_id: k.userId,
    key_type: k.keyType,
    key: k.key,
    holder_document: k.holderDocument,
    holder_name: k.holderName,
    updated_at: k.updatedAt,
  };
}

export function custodialAccountToJson(a: tradev1.CustodialAccount): CustodialAccountJson {
  return {
    user_id: a.userId,
    network: a.network,
    address: a.address,
    derivation_index: a.derivationIndex,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}
