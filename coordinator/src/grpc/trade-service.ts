import { formatPrice, PonteError } from "@ponte/common";
import { tradev1 } from "@ponte/proto";
import type { Asset } from "../quote/types.js";
import { trimNumeric, type Trade } from "../trade/model.js";
import type { HistoryEntry, PixKeyRecord, Quote, TradeService } from "../trade/service.js";
import type { CustodialAccount } from "../custodial/accounts.js";
import type { Order } from "../transfer/index.js";
import type { Handlers } from "./handlers.js";

// Proto ↔ domain at the edge: nothing below this file sees generated types.
const price = (p: bigint): string => trimNumeric(formatPrice(p));

const assetToProto = (a: Asset, p: bigint | undefined): tradev1.Asset => ({
  symbol: a.symbol,
  network: a.network,
  name: a.name,
  decimals: a.decimals,
  contract: a.contract ?? "",
  minAmount: a.minAmount.toString(),
  maxAmount: a.maxAmount.toString(),
  confirmations: a.confirmations,
  enabled: a.enabled,
  spreadBps: a.spreadBps.toString(),
  networkFeeBps: a.networkFeeBps.toString(),
  price: p === undefined ? "" : price(p),
});

const quoteToProto = (q: Quote): tradev1.Quote => ({
  quoteId: q.id,
  userId: q.userId,
  symbol: q.asset.symbol,
  network: q.asset.network,
  decimals: q.asset.decimals,
  cryptoAmount: q.cryptoAmount.toString(),
  fiatAmountCentavos: q.fiatCentavos.toString(),
  price: price(q.price),
  spreadBps: q.asset.spreadBps.toString(),
  networkFeeBps: q.asset.networkFeeBps.toString(),
  spreadCentavos: q.spreadCentavos.toString(),
  networkFeeCentavos: q.networkFeeCentavos.toString(),
  expiresAt: q.expiresAt.toISOString(),
  createdAt: q.createdAt.toISOString(),
});

export interface PayoutView {
  amountCentavos: bigint;
  status: string;
  endToEndId: string | null;
}

export const tradeToProto = (t: Trade, payout?: PayoutView): tradev1.Trade => ({
  id: t.id,
  userId: t.userId,
  status: t.status,
  symbol: t.symbol,
  network: t.network,
  decimals: t.decimals,
  cryptoAmount: t.cryptoAmount.toString(),
  fiatAmountCentavos: t.fiatCentavos.toString(),
  price: price(t.price),
  depositAddress: t.depositAddress,
  refundAddress: t.refundAddress ?? "",
  expiresAt: t.expiresAt.toISOString(),
  monitoringUntil: t.monitoringUntil.toISOString(),
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
  version: t.version,
  receivedAmount: t.receivedAmount.toString(),
  confirmedAmount: t.confirmedAmount.toString(),
  payoutAmountCentavos: payout ? payout.amountCentavos.toString() : "",
  quoteId: t.quoteId,
  payoutStatus: payout?.status ?? "",
  payoutEndToEndId: payout?.endToEndId ?? "",
  source: t.source,
});

const entryToProto = (e: HistoryEntry): tradev1.AuditEntry => ({
  id: e.id,
  fromStatus: e.fromStatus ?? "",
  toStatus: e.toStatus,
  actor: e.actor,
  reason: e.reason,
  createdAt: e.createdAt.toISOString(),
  version: e.version,
  data: e.data,
});

const transferToProto = (o: Order): tradev1.TransferRecord => {
  const last = o.attempts[o.attempts.length - 1];
  const shown = o.attempts.find((a) => a.txHash === o.confirmedTxHash) ?? last;
  return {
    orderId: o.id,
    kind: o.kind,
    status: o.status,
    fromAddress: o.fromAddress,
    toAddress: o.toAddress,
    contract: o.contract,
    amount: o.amount.toString(),
    txHash: shown?.txHash ?? "",
    fee: shown?.fee ?? "",
    attempts: o.attempts.length,
    reason: o.reason ?? "",
    createdAt: o.createdAt.toISOString(),
    updatedAt: o.updatedAt.toISOString(),
    purpose: o.purpose,
  };
};

const custodialToProto = (a: CustodialAccount): tradev1.CustodialAccount => ({
  userId: a.userId,
  network: a.network,
  address: a.address,
  derivationIndex: a.derivationIndex,
  createdAt: a.createdAt.toISOString(),
  updatedAt: a.updatedAt.toISOString(),
});

const pixToProto = (k: PixKeyRecord): tradev1.PixKey => ({
  userId: k.userId,
  keyType: k.keyType,
  key: k.key,
  holderDocument: k.holderDocument,
  holderName: k.holderName,
  updatedAt: k.updatedAt.toISOString(),
});

const required = (value: string, field: string): string => {
  if (!value) throw new PonteError("VALIDATION_ERROR", `${field} is required`, { field });
  return value;
};

export function tradeServiceHandlers(deps: {
  svc: TradeService;
  ping: () => Promise<boolean>;
  payoutOf: (t: Trade) => Promise<PayoutView | undefined>;
  transfersOf: (tradeId: string) => Promise<Order[]>;
  ingestWebhook: (provider: string, rawBody: string, headers: Record<string, string>) => Promise<{ eventId: string; duplicate: boolean }>;
}): Handlers<tradev1.TradeServiceServer> {
  const { svc, ping, payoutOf } = deps;
  const withPayout = async (t: Trade) => tradeToProto(t, await payoutOf(t));
  return {
    ping: async () => ({ databaseOk: await ping() }),
    listAssets: async () => ({ assets: (await svc.listAssets()).map((a) => assetToProto(a.asset, a.price)) }),
    createQuote: async (r) =>
      quoteToProto(
        await svc.createQuote({
          userId: required(r.userId, "user_id"),
          symbol: r.symbol,
          network: r.network,
          cryptoAmount: r.amount?.$case === "cryptoAmount" ? r.amount.value : undefined,
          fiatAmount: r.amount?.$case === "fiatAmount" ? r.amount.value : undefined,
        }),
      ),
    createTrade: async (r) => {
      const { trade } = await svc.createTrade({
        userId: required(r.userId, "user_id"),
        quoteId: r.quoteId,
        refundAddress: r.refundAddress,
        idempotencyKey: r.idempotencyKey,
        requestHash: required(r.requestHash, "request_hash"),
        source: r.source,
      });
      return withPayout(trade);
    },
    getTrade: async (r) => withPayout(await svc.getTrade(r.tradeId, r.userId || undefined)),
    cancelTrade: async (r) => {
      const admin = r.actorRole === "admin";
      const t = await svc.cancelTrade({
        tradeId: r.tradeId,
        userId: admin ? undefined : required(r.userId, "user_id"),
        actor: { kind: admin ? "admin" : "user", id: required(r.userId, "user_id") },
        reason: r.reason,
      });
      return withPayout(t);
    },
    listTrades: async (r) => {
      const page = await svc.listTrades({
        userId: required(r.userId, "user_id"),
        limit: r.limit,
        cursor: r.cursor || undefined,
        status: r.status || undefined,
      });
      return { trades: await Promise.all(page.trades.map(withPayout)), nextCursor: page.nextCursor ?? "" };
    },
    getAuditLog: async (r) => {
      const entries = (await svc.auditLog(r.tradeId, r.userId || undefined)).map(entryToProto);
      return { tradeId: r.tradeId, entries, transfers: (await deps.transfersOf(r.tradeId)).map(transferToProto) };
    },
    adminConfirmPayment: async (r) =>
      withPayout(await svc.adminTransition({ tradeId: r.tradeId, adminId: required(r.adminId, "admin_id"), reason: r.reason, to: "PAYMENT_CONFIRMED" })),
    adminComplete: async (r) =>
      withPayout(await svc.adminTransition({ tradeId: r.tradeId, adminId: required(r.adminId, "admin_id"), reason: r.reason, to: "COMPLETED" })),
    putPixKey: async (r) =>
      pixToProto(
        await svc.putPixKey({
          userId: required(r.userId, "user_id"),
          keyType: r.keyType,
          key: r.key,
          holderDocument: r.holderDocument,
          holderName: r.holderName,
          identityDocument: r.identityDocument || undefined,
        }),
      ),
    getPixKey: async (r) => pixToProto(await svc.getPixKey(required(r.userId, "user_id"))),
    putCustodialAccount: async (r) =>
      custodialToProto(
        await svc.custodialAccounts.put({
          userId: required(r.userId, "user_id"),
          network: required(r.network, "network"),
          address: r.address,
          derivationIndex: r.derivationIndex,
        }),
      ),
    getCustodialAccount: async (r) =>
      custodialToProto(await svc.custodialAccounts.get(required(r.userId, "user_id"), required(r.network, "network"))),
    ingestPixWebhook: async (r) => deps.ingestWebhook(r.provider, Buffer.from(r.rawBody).toString("utf8"), r.headers),
  };
}
