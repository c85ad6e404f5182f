import { randomBytes } from "node:crypto";
import { createCoordinatorClient, type DerivedAddress } from "@ponte/agent-runtime";
import { createLogger, newId } from "@ponte/common";
import type { Sql } from "@ponte/coordinator";
import { startTestCoordinator as startShared, type TestCoordinator } from "@ponte/coordinator/testing";

export type { TestCoordinator };

export const NETWORK = "litecoin-regtest";

/** The real coordinator, in-process (@ponte/coordinator/testing), set up for this package's tests. */
export const startTestCoordinator = (env: Record<string, string> = {}): Promise<TestCoordinator> =>
  startShared({ name: "agent-bitcoin", env: { LEASE_TTL_MS: "1000", TRANSFER_INTERVAL_MS: "200", ...env } });

/** Stores deposit addresses through the AgentService, as an earlier agent of the network did. */
export async function stockPool(address: string, addresses: DerivedAddress[], network = NETWORK): Promise<void> {
  const client = createCoordinatorClient({ address, logger: createLogger({ name: "ltc-test-client", level: "silent" }) });
  try {
    const agentId = `stocker-${randomBytes(3).toString("hex")}`;
    const g = await client.register({ network, agentId, leaseEpoch: 0n }, { family: "utxo", chainId: "litecoin-regtest", version: "test" });
    if (!g.granted) throw new Error(`the lease of ${network} is held by ${g.holder}`);
    const id = { network, agentId, leaseEpoch: g.epoch };
    await client.addDepositAddresses(id, addresses);
    await client.release(id);
  } finally {
    client.close();
  }
}

export interface Trade {
  tradeId: string;
  address: string;
}

/** LTC at the test coordinator's static price (R$ 400). */
const PRICE = "400";

/**
 * A sale as the coordinator's CreateTrade makes it: a quote, the trade on the lowest AVAILABLE
 * pool address (ASSIGNED), NOTIFY ponte_watch. Works while the coordinator is down, too.
 */
export async function createTrade(sql: Sql, o: { amount: bigint; refundAddress?: string; expiresInSeconds?: number }): Promise<Trade> {
  const fiat = (o.amount * 400_00n) / 10n ** 8n;
  return sql.begin(async (tx) => {
    const [a] = await tx<{ address: string }[]>`
      SELECT address FROM deposit_addresses WHERE network = ${NETWORK} AND status = 'AVAILABLE'
       ORDER BY derivation_index LIMIT 1 FOR UPDATE`;
    if (!a) throw new Error("the pool has no address left");
    const tradeId = newId("trade") as string;
    const quoteId = newId("quote") as string;
    await tx`INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price, spread_bps,
                                 network_fee_bps, spread_centavos, network_fee_centavos, expires_at, used_by_trade_id)
             VALUES (${quoteId}, 'user-ltc-test', ${NETWORK}, 'LTC', 8, ${o.amount.toString()}, ${fiat.toString()},
                     ${PRICE}, 300, 25, 0, 0, now() + interval '60 seconds', ${tradeId})`;
    await tx`INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, contract, crypto_amount,
                                         fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address, expires_at,
                                         monitoring_until, refund_address)
             VALUES (${tradeId}, 'user-ltc-test', ${quoteId}, 'PENDING', ${NETWORK}, 'LTC', 8, '',
                     ${o.amount.toString()}, ${fiat.toString()}, ${PRICE}, 300, 25, ${a.address},
                     now() + make_interval(secs => ${o.expiresInSeconds ?? 1800}), now() + interval '1 day', ${o.refundAddress ?? null})`;
    await tx`UPDATE deposit_addresses SET status = 'ASSIGNED', trade_id = ${tradeId}, assigned_at = now()
              WHERE network = ${NETWORK} AND address = ${a.address}`;
    await tx`SELECT pg_notify('ponte_watch', ${NETWORK})`;
    return { tradeId, address: a.address };
  });
}

export interface DepositRow {
  tx_ref: string;
  status: string;
  amount: string;
  address: string;
  trade_id: string | null;
  block_height: bigint | null;
  block_hash: string | null;
  rbf_signaled: boolean;
}

export async function deposits(sql: Sql): Promise<Map<string, DepositRow>> {
  const rows = await sql<DepositRow[]>`
    SELECT tx_ref, status, amount::text AS amount, address, trade_id, block_height, block_hash, rbf_signaled
      FROM deposits WHERE network = ${NETWORK}`;
  return new Map(rows.map((r) => [r.tx_ref, r]));
}

export const cursorHeight = async (sql: Sql): Promise<bigint | undefined> =>
  (await sql<{ height: bigint }[]>`SELECT height FROM chain_cursors WHERE network = ${NETWORK}`)[0]?.height;

export const tradeStatus = async (sql: Sql, tradeId: string): Promise<string | undefined> =>
  (await sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${tradeId}`)[0]?.status;

export const history = async (sql: Sql, tradeId: string): Promise<string[]> =>
  (await sql<{ to_status: string }[]>`SELECT to_status FROM instant_trade_history WHERE trade_id = ${tradeId} ORDER BY version`).map((r) => r.to_status);

export const leaseOf = async (sql: Sql) =>
  (await sql<{ holder: string; epoch: bigint; lapsed: boolean }[]>`
    SELECT holder, epoch, expires_at <= now() AS lapsed FROM agent_leases WHERE network = ${NETWORK}`)[0];

export interface OrderRow {
  id: string;
  kind: string;
  status: string;
  trade_id: string | null;
  amount: string;
  to_address: string;
  confirmed_tx_hash: string | null;
  reason: string | null;
}

export const ordersOf = (sql: Sql, tradeId: string) =>
  sql<OrderRow[]>`SELECT id, kind, status, trade_id, amount::text AS amount, to_address, confirmed_tx_hash, reason
                    FROM transfer_transactions WHERE trade_id = ${tradeId} ORDER BY created_at`;

export const attemptsOf = (sql: Sql, orderId: string) =>
  sql<{ attempt: number; tx_hash: string; status: string; fee: string | null }[]>`
    SELECT attempt, tx_hash, status, fee::text AS fee FROM transfer_attempts WHERE order_id = ${orderId} ORDER BY attempt`;
