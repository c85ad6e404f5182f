import { formatBrl, isQuoteId, isTradeId, newId, normalizeDocument, normalizePixKey, isValidDocument,
  PIX_KEY_TYPES, PonteError, type Logger, type PixKeyType, formatPrice, parseUnits, parseBrl } from "@ponte/common";
import type { Sql, Tx } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { computeQuote } from "../quote/compute.js";
import type { Asset, AssetRegistry, PriceSource } from "../quote/types.js";
import type { Actor } from "./actor.js";
import { validateRefundAddress } from "./address.js";
import { tradeFromRow, type Trade, type TradeRow } from "./model.js";
import { isTradeStatus, type TradeStatus } from "./states.js";
import { recordCreated, transition, type TransitionContext } from "./transition.js";
import { createCustodialAccounts } from "../custodial/accounts.js";
import { hotWallet, orderFromUserAddress } from "../transfer/orders.js";

export interface TradeServiceOptions {
  quoteTtlSeconds: number;
  tradeTtlSeconds: number;
  monitoringGraceSeconds: number;
  dailyLimitCentavos: bigint;
  tradeMaxCentavos: bigint;
}

export interface Quote {
  id: string;
  userId: string;
  asset: Asset;
  cryptoAmount: bigint;
  fiatCentavos: bigint;
  price: bigint;
  spreadCentavos: bigint;
  networkFeeCentavos: bigint;
  expiresAt: Date;
  createdAt: Date;
}

export interface HistoryEntry {
  id: bigint;
  fromStatus: string | null;
  toStatus: string;
  actor: string;
  reason: string;
  createdAt: Date;
  version: bigint;
  data: Record<string, string>;
}

export interface PixKeyRecord {
  userId: string;
  keyType: PixKeyType;
  key: string;
  holderDocument: string;
  holderName: string;
  updatedAt: Date;
}

// Statuses whose BRL counts against the user's daily limit (everything that may still pay out).
const COUNTS_FOR_LIMIT: readonly TradeStatus[] = [
  "PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "PAYOUT_PENDING", "COMPLETED", "MANUAL_REVIEW",
];

export type TradeService = ReturnType<typeof createTradeService>;

export function createTradeService(common: {
  sql: Sql;
  logger: Logger;
  metrics: CoordinatorMetrics;
  registry: AssetRegistry;
  prices: PriceSource;
  transitions: TransitionContext;
  options: TradeServiceOptions;
}) {
  const { sql, registry, prices, options: o } = common;
  const logger = common.logger.child({ component: "trades" });
  const custodial = createCustodialAccounts({ sql, registry });

  async function usedToday(db: Sql | Tx, userId: string): Promise<bigint> {
    const [r] = await db<{ total: string | null }[]>`
      SELECT COALESCE(sum(fiat_amount_centavos), 0)::text AS total FROM instant_trades
       WHERE user_id = ${userId} AND created_at >= date_trunc('day', now())
         AND status = ANY(${COUNTS_FOR_LIMIT as TradeStatus[]})`;
    return BigInt(r?.total ?? "0");
  }

  /**
   * A sale from the user's custodial wallet: the trade's "deposit address" is that wallet, and in
   * the same transaction the agent is ordered to move the quoted amount to the hot wallet (a token's
   * gas topped up first). The order's progress moves the trade (transfer/index.ts).
   */
  async function createCustodialSell(
    tx: Tx,
    req: { userId: string; idempotencyKey: string; requestHash: string },
    q: { id: string; network: string; symbol: string; decimals: number; crypto_amount: string; fiat_amount_centavos: bigint; price: string;
      spread_bps: number; network_fee_bps: number },
    asset: Asset,
  ): Promise<Trade> {
    const account = await custodial.get(req.userId, q.network, tx);
    checkLimits(BigInt(q.fiat_amount_centavos), await usedToday(tx, req.userId));
    const hot = await hotWallet(tx, q.network);
    if (!hot) {
      throw new PonteError("UNAVAILABLE", `No hot wallet is registered for ${q.network} yet; is its agent running?`, { network: q.network });
    }
    const id = newId("trade");
    const [row] = await tx<TradeRow[]>`
      INSERT INTO instant_trades (id, user_id, quote_id, status, source, network, symbol, decimals, contract, crypto_amount,
                                  fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address,
                                  refund_address, expires_at, monitoring_until)
      VALUES (${id}, ${req.userId}, ${q.id}, 'PENDING', 'custodial', ${q.network}, ${q.symbol}, ${q.decimals}, ${asset.contract ?? ""},
              ${q.crypto_amount}, ${q.fiat_amount_centavos.toString()}, ${q.price}, ${q.spread_bps}, ${q.network_fee_bps},
              ${account.address}, ${account.address},
              now() + make_interval(secs => ${o.tradeTtlSeconds}),
              now() + make_interval(secs => ${o.tradeTtlSeconds + o.monitoringGraceSeconds}))
      RETURNING *`;
    await tx`UPDATE quotes SET used_by_trade_id = ${id} WHERE id = ${q.id}`;
    await tx`INSERT INTO idempotency_keys (user_id, key, request_hash, trade_id)
             VALUES (${req.userId}, ${req.idempotencyKey}, ${req.requestHash}, ${id})`;
    const trade = tradeFromRow(row!);
    await recordCreated(tx, common.transitions, trade, { kind: "user", id: req.userId });
    const orderId = await orderFromUserAddress(tx, common.metrics, {
      network: q.network, kind: "CUSTODIAL_SELL", tradeId: id, from: account.address, to: hot, contract: trade.contract,
      amount: trade.cryptoAmount, hot,
    });
    await tx`SELECT pg_notify('ponte_transfers', ${q.network})`;
    logger.info({ trade_id: id, network: q.network, asset: q.symbol, order_id: orderId }, "Custodial sell created");
    return trade;
  }

  function checkLimits(fiat: bigint, used: bigint): void {
    if (fiat > o.tradeMaxCentavos) {
      throw new PonteError("AMOUNT_TOO_LARGE", `The most one trade can pay is R$ ${formatBrl(o.tradeMaxCentavos)}`, {
        max_fiat_amount: formatBrl(o.tradeMaxCentavos),
      });
    }
    if (used + fiat > o.dailyLimitCentavos) {
      throw new PonteError("DAILY_LIMIT_EXCEEDED", "This trade would exceed your daily limit", {
        daily_limit: formatBrl(o.dailyLimitCentavos),
        used_today: formatBrl(used),
        remaining: formatBrl(used >= o.dailyLimitCentavos ? 0n : o.dailyLimitCentavos - used),
      });
    }
  }

  async function loadTrade(db: Sql | Tx, tradeId: string, userId: string | undefined, lock = false): Promise<Trade> {
    if (!isTradeId(tradeId)) throw new PonteError("INVALID_ID", "Malformed trade id", { trade_id: tradeId.slice(0, 64) });
    const rows = lock
      ? await db<TradeRow[]>`SELECT * FROM instant_trades WHERE id = ${tradeId} FOR UPDATE`
      : await db<TradeRow[]>`SELECT * FROM instant_trades WHERE id = ${tradeId}`;
    const row = rows[0];
    // Another user's trade is indistinguishable from a missing one.
    if (!row || (userId !== undefined && row.user_id !== userId)) {
      throw new PonteError("TRADE_NOT_FOUND", "Trade not found", { trade_id: tradeId });
    }
    return tradeFromRow(row);
  }

  return {
    async listAssets(): Promise<{ asset: Asset; price: bigint | undefined }[]> {
      return Promise.all(
        registry.list().map(async (asset) => {
          if (!asset.enabled) return { asset, price: undefined };
          try {
            return { asset, price: await prices.price(asset) };
          } catch (err) {
            if (err instanceof PonteError && err.code === "PRICE_UNAVAILABLE") return { asset, price: undefined };
            throw err;
          }
        }),
      );
    },

    async createQuote(req: {
      userId: string;
      symbol: string;
      network: string;
      cryptoAmount?: string;
      fiatAmount?: string;
    }): Promise<Quote> {
      const asset = registry.get(req.symbol, req.network);
      if ((req.cryptoAmount === undefined) === (req.fiatAmount === undefined)) {
        throw new PonteError("VALIDATION_ERROR", "Give exactly one of crypto_amount and fiat_amount", {
          fields: ["crypto_amount", "fiat_amount"],
        });
      }
      const cryptoAmount = req.cryptoAmount !== undefined ? parseUnits(req.cryptoAmount, asset.decimals, "crypto_amount") : undefined;
      const fiatCentavos = req.fiatAmount !== undefined ? parseBrl(req.fiatAmount) : undefined;
      const price = await prices.price(asset);
      const figures = computeQuote({ asset, price, cryptoAmount, fiatCentavos });
      checkLimits(figures.fiatCentavos, 0n);
      const id = newId("quote");
      // The daily limit is checked and the quote stored in one round trip: the INSERT happens
      // only when the user's day has room (bench/README.md, B1). The trade re-checks it.
      const [row] = await sql<{ used: string; expires_at: Date | null; created_at: Date | null }[]>`
        WITH used AS (
          SELECT COALESCE(sum(fiat_amount_centavos), 0) AS total FROM instant_trades
           WHERE user_id = ${req.userId} AND created_at >= date_trunc('day', now())
             AND status = ANY(${COUNTS_FOR_LIMIT as TradeStatus[]})
        ), stored AS (
          INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price,
                              spread_bps, network_fee_bps, spread_centavos, network_fee_centavos, expires_at)
          SELECT ${id}, ${req.userId}, ${asset.network}, ${asset.symbol}, ${asset.decimals},
                 ${figures.cryptoAmount.toString()}, ${figures.fiatCentavos.toString()}, ${formatPrice(price)},
                 ${Number(asset.spreadBps)}, ${Number(asset.networkFeeBps)}, ${figures.spreadCentavos.toString()},
                 ${figures.networkFeeCentavos.toString()}, now() + make_interval(secs => ${o.quoteTtlSeconds})
            FROM used WHERE used.total + ${figures.fiatCentavos.toString()}::bigint <= ${o.dailyLimitCentavos.toString()}::bigint
          RETURNING expires_at, created_at
        )
        SELECT used.total::text AS used, stored.expires_at, stored.created_at FROM used LEFT JOIN stored ON true`;
      if (!row?.expires_at || !row.created_at) {
        checkLimits(figures.fiatCentavos, BigInt(row?.used ?? "0"));
        // Unreachable: the INSERT is skipped only when the limit is exceeded.
        throw new PonteError("INTERNAL", "The quote was not stored", {});
      }
      common.metrics.quotes.inc({ network: asset.network, asset: asset.symbol });
      return { id, userId: req.userId, asset, price, ...figures, expiresAt: row.expires_at, createdAt: row.created_at };
    },

    async createTrade(req: {
      userId: string;
      quoteId: string;
      refundAddress: string;
      idempotencyKey: string;
      requestHash: string;
      /** "deposit" (default) or "custodial": sell from the user's custodial wallet on the quote's network. */
      source?: string;
    }): Promise<{ trade: Trade; replayed: boolean }> {
      if (!isQuoteId(req.quoteId)) throw new PonteError("INVALID_ID", "Malformed quote id", { field: "quote_id" });
      const source = req.source || "deposit";
      if (source !== "deposit" && source !== "custodial") {
        throw new PonteError("VALIDATION_ERROR", "source must be deposit or custodial", { field: "source" });
      }
      if (source === "custodial" && req.refundAddress !== "") {
        throw new PonteError("VALIDATION_ERROR", "A custodial sell takes no refund_address: a refund goes back to the custodial wallet", {
          field: "refund_address",
        });
      }
      if (req.idempotencyKey.length === 0 || req.idempotencyKey.length > 128) {
        throw new PonteError("VALIDATION_ERROR", "Idempotency-Key must be 1 to 128 characters", { field: "idempotency_key" });
      }
      return sql.begin(async (tx) => {
        // One creation at a time per user: the daily limit and the idempotency key are read and
        // written without a race, and a concurrent retry waits for the first to commit.
        await tx`SELECT pg_advisory_xact_lock(hashtext('ponte_user'), hashtext(${req.userId}))`;
        const [prior] = await tx<{ request_hash: string; trade_id: string }[]>`
          SELECT request_hash, trade_id FROM idempotency_keys WHERE user_id = ${req.userId} AND key = ${req.idempotencyKey}`;
        if (prior) {
          if (prior.request_hash !== req.requestHash) {
            throw new PonteError("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used with another request", {});
          }
          return { trade: await loadTrade(tx, prior.trade_id, req.userId), replayed: true };
        }
        const [q] = await tx<{
          id: string; user_id: string; network: string; symbol: string; decimals: number; crypto_amount: string;
          fiat_amount_centavos: bigint; price: string; spread_bps: number; network_fee_bps: number;
          used_by_trade_id: string | null; expired: boolean;
        }[]>`SELECT *, expires_at <= now() AS expired FROM quotes WHERE id = ${req.quoteId} FOR UPDATE`;
        if (!q || q.user_id !== req.userId) throw new PonteError("QUOTE_NOT_FOUND", "Quote not found", { quote_id: req.quoteId });
        if (q.used_by_trade_id) {
          throw new PonteError("QUOTE_ALREADY_USED", "This quote already has a trade", { quote_id: q.id, trade_id: q.used_by_trade_id });
        }
        if (q.expired) throw new PonteError("QUOTE_EXPIRED", "The quote expired; ask for a new one", { quote_id: q.id });
        const asset = registry.get(q.symbol, q.network);
        if (source === "custodial") return { trade: await createCustodialSell(tx, req, q, asset), replayed: false };
        const refundAddress = validateRefundAddress(asset.family, asset.network, req.refundAddress);
        checkLimits(BigInt(q.fiat_amount_centavos), await usedToday(tx, req.userId));
        const [addr] = await tx<{ address: string }[]>`
          SELECT address FROM deposit_addresses
           WHERE network = ${q.network} AND status = 'AVAILABLE'
           ORDER BY derivation_index LIMIT 1 FOR UPDATE SKIP LOCKED`;
        if (!addr) {
          common.metrics.noDepositAddress.inc({ network: q.network });
          logger.error({ network: q.network }, "Deposit address pool is empty; is the network's agent running?");
          throw new PonteError("NO_DEPOSIT_ADDRESS", "No deposit address is available for this network right now; try again shortly", {
            network: q.network,
          });
        }
        const id = newId("trade");
        const [row] = await tx<TradeRow[]>`
          INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, contract, crypto_amount,
                                      fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address,
                                      refund_address, expires_at, monitoring_until)
          VALUES (${id}, ${req.userId}, ${q.id}, 'PENDING', ${q.network}, ${q.symbol}, ${q.decimals}, ${asset.contract ?? ""},
                  ${q.crypto_amount}, ${q.fiat_amount_centavos.toString()}, ${q.price}, ${q.spread_bps}, ${q.network_fee_bps},
                  ${addr.address}, ${refundAddress},
                  now() + make_interval(secs => ${o.tradeTtlSeconds}),
                  now() + make_interval(secs => ${o.tradeTtlSeconds + o.monitoringGraceSeconds}))
          RETURNING *`;
        await tx`UPDATE deposit_addresses SET status = 'ASSIGNED', trade_id = ${id}, assigned_at = now()
                  WHERE network = ${q.network} AND address = ${addr.address}`;
        await tx`UPDATE quotes SET used_by_trade_id = ${id} WHERE id = ${q.id}`;
        await tx`INSERT INTO idempotency_keys (user_id, key, request_hash, trade_id)
                 VALUES (${req.userId}, ${req.idempotencyKey}, ${req.requestHash}, ${id})`;
        const trade = tradeFromRow(row!);
        await recordCreated(tx, common.transitions, trade, { kind: "user", id: req.userId });
        await tx`SELECT pg_notify('ponte_watch', ${q.network})`;
        logger.info({ trade_id: id, network: q.network, asset: q.symbol }, "Trade created");
        return { trade, replayed: false };
      });
    },

    getTrade: (tradeId: string, userId?: string): Promise<Trade> => loadTrade(sql, tradeId, userId),

    custodialAccounts: custodial,

    async cancelTrade(req: { tradeId: string; actor: Actor; userId?: string; reason: string }): Promise<Trade> {
      return sql.begin(async (tx) => {
        const trade = await loadTrade(tx, req.tradeId, req.userId);
        if (trade.source === "custodial") {
          // Its transfer order may already be signed: only the order's outcome ends it.
          throw new PonteError("INVALID_STATE", "A custodial sell cannot be cancelled once ordered", { trade_id: trade.id, status: trade.status });
        }
        if (trade.status !== "PENDING") {
          throw new PonteError("INVALID_STATE", `A trade in ${trade.status} cannot be cancelled`, {
            trade_id: trade.id,
            status: trade.status,
          });
        }
        return transition(tx, common.transitions, {
          tradeId: trade.id,
          from: "PENDING",
          to: "CANCELLED",
          actor: req.actor,
          reason: req.reason || "cancelled by the user",
        });
      });
    },

    async adminTransition(req: { tradeId: string; adminId: string; reason: string; to: "PAYMENT_CONFIRMED" | "COMPLETED" }): Promise<Trade> {
      if (req.reason.trim().length === 0) throw new PonteError("VALIDATION_ERROR", "reason is required", { field: "reason" });
      return sql.begin(async (tx) => {
        const trade = await loadTrade(tx, req.tradeId, undefined);
        return transition(tx, common.transitions, {
          tradeId: trade.id,
          from: trade.status,
          to: req.to,
          actor: { kind: "admin", id: req.adminId },
          reason: req.reason,
        });
      });
    },

    async listTrades(req: { userId: string; limit: number; cursor?: string; status?: string }): Promise<{ trades: Trade[]; nextCursor?: string }> {
      const limit = Math.min(Math.max(req.limit || 20, 1), 100);
      if (req.status && !isTradeStatus(req.status)) {
        throw new PonteError("VALIDATION_ERROR", "Unknown status filter", { field: "status" });
      }
      const after = req.cursor ? decodeCursor(req.cursor) : undefined;
      const rows = await sql<TradeRow[]>`
        SELECT * FROM instant_trades
         WHERE user_id = ${req.userId}
           ${req.status ? sql`AND status = ${req.status}` : sql``}
           ${after ? sql`AND id < ${after}` : sql``}
         ORDER BY id DESC
         LIMIT ${limit + 1}`;
      const trades = rows.slice(0, limit).map(tradeFromRow);
      const last = trades[trades.length - 1];
      return { trades, nextCursor: rows.length > limit && last ? encodeCursor(last) : undefined };
    },

    async auditLog(tradeId: string, userId?: string): Promise<HistoryEntry[]> {
      const trade = await loadTrade(sql, tradeId, userId);
      const rows = await sql<{
        id: bigint; from_status: string | null; to_status: string; actor: string; reason: string;
        created_at: Date; version: bigint; data: Record<string, string>;
      }[]>`SELECT * FROM instant_trade_history WHERE trade_id = ${trade.id} ORDER BY version, id`;
      return rows.map((r) => ({
        id: r.id, fromStatus: r.from_status, toStatus: r.to_status, actor: r.actor, reason: r.reason,
        createdAt: r.created_at, version: r.version, data: r.data,
      }));
    },

    async putPixKey(req: {
      userId: string; keyType: string; key: string; holderDocument: string; holderName: string; identityDocument?: string;
    }): Promise<PixKeyRecord> {
      if (!(PIX_KEY_TYPES as readonly string[]).includes(req.keyType)) {
        throw new PonteError("VALIDATION_ERROR", `key_type must be one of ${PIX_KEY_TYPES.join(", ")}`, { field: "key_type" });
      }
      const keyType = req.keyType as PixKeyType;
      const key = normalizePixKey(keyType, req.key);
      const holderDocument = normalizeDocument(req.holderDocument);
      if (!isValidDocument(holderDocument)) {
        throw new PonteError("VALIDATION_ERROR", "holder_document must be a valid CPF or CNPJ", { field: "holder_document" });
      }
      if (req.identityDocument && normalizeDocument(req.identityDocument) !== holderDocument) {
        throw new PonteError("HOLDER_DOCUMENT_MISMATCH", "holder_document must be your own CPF/CNPJ", { field: "holder_document" });
      }
      const holderName = req.holderName.trim();
      if (holderName.length === 0 || holderName.length > 200) {
        throw new PonteError("VALIDATION_ERROR", "holder_name must be 1 to 200 characters", { field: "holder_name" });
      }
      const [row] = await sql<{ updated_at: Date }[]>`
        INSERT INTO user_bank_data (user_id, key_type, pix_key, holder_document, holder_name)
        VALUES (${req.userId}, ${keyType}, ${key}, ${holderDocument}, ${holderName})
        ON CONFLICT (user_id) DO UPDATE SET key_type = EXCLUDED.key_type, pix_key = EXCLUDED.pix_key,
          holder_document = EXCLUDED.holder_document, holder_name = EXCLUDED.holder_name, updated_at = now()
        RETURNING updated_at`;
      return { userId: req.userId, keyType, key, holderDocument, holderName, updatedAt: row!.updated_at };
    },

    async getPixKey(userId: string): Promise<PixKeyRecord> {
      const [r] = await sql<{ key_type: PixKeyType; pix_key: string; holder_document: string; holder_name: string; updated_at: Date }[]>`
        SELECT * FROM user_bank_data WHERE user_id = ${userId}`;
      if (!r) throw new PonteError("PIX_KEY_NOT_FOUND", "No PIX key registered yet", {});
      return { userId, keyType: r.key_type, key: r.pix_key, holderDocument: r.holder_document, holderName: r.holder_name, updatedAt: r.updated_at };
    },
  };
}

// Trade ids are time-ordered, so the id alone is an exact, stable page boundary.
function encodeCursor(t: Trade): string {
  return Buffer.from(t.id).toString("base64url");
}

function decodeCursor(s: string): string {
  const id = Buffer.from(s, "base64url").toString("utf8");
  if (!isTradeId(id)) throw new PonteError("VALIDATION_ERROR", "Malformed cursor", { field: "cursor" });
  return id;
}
