import { newId } from "@ponte/common";
import type { Sql } from "../db/index.js";
import type { TradeStatus } from "../trade/states.js";

/** Inserts a quote and a trade in the given status directly (for state-machine tests). */
export async function insertTrade(
  sql: Sql,
  opts: { status?: TradeStatus; userId?: string; network?: string; expiresInSeconds?: number } = {},
): Promise<string> {
  const quoteId = newId("quote");
  const tradeId = newId("trade");
  const userId = opts.userId ?? "user-1";
  const network = opts.network ?? "anvil";
  await sql`INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price,
                                spread_bps, network_fee_bps, spread_centavos, network_fee_centavos, expires_at, used_by_trade_id)
            VALUES (${quoteId}, ${userId}, ${network}, 'USDT', 6, 100000000, 52000, '5.4', 300, 25, 1700, 135,
                    now() + interval '60 seconds', ${tradeId})`;
  await sql`INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, crypto_amount,
                                        fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address,
                                        refund_address, expires_at, monitoring_until)
            VALUES (${tradeId}, ${userId}, ${quoteId}, ${opts.status ?? "PENDING"}, ${network}, 'USDT', 6, 100000000,
                    52000, '5.4', 300, 25, ${`0x${tradeId.slice(4).padEnd(40, "0").slice(0, 40)}`}, null,
                    now() + make_interval(secs => ${opts.expiresInSeconds ?? 1800}),
                    now() + make_interval(secs => ${(opts.expiresInSeconds ?? 1800) + 86400}))`;
  return tradeId;
}
