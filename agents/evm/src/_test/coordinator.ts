import { randomBytes } from "node:crypto";
import { createCoordinatorClient, type DerivedAddress } from "@ponte/agent-runtime";
import { createLogger, newId, parseBrl } from "@ponte/common";
import type { Sql } from "@ponte/coordinator";
import { startTestCoordinator as startShared, type TestCoordinator } from "@ponte/coordinator/testing";

export type { TestCoordinator };

export const NETWORK = "anvil";

/** The real coordinator, in-process (@ponte/coordinator/testing), set up for this package's tests. */
export const startTestCoordinator = (env: Record<string, string> = {}): Promise<TestCoordinator> =>
  startShared({ name: "agent-evm", env: { LEASE_TTL_MS: "1000", ...env } });

/** Stores deposit addresses through the AgentService, as an earlier agent of the network did. */
export async function stockPool(address: string, addresses: DerivedAddress[], network = NETWORK): Promise<void> {
  const client = createCoordinatorClient({ address, logger: createLogger({ name: "evm-test-client", level: "silent" }) });
  try {
    const agentId = `stocker-${randomBytes(3).toString("hex")}`;
    const g = await client.register({ network, agentId, leaseEpoch: 0n }, { family: "evm", chainId: "31337", version: "test" });
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
  /** The deposit address, as the pool stores it (EIP-55). */
  address: string;
}

const ASSETS = {
  ETH: { decimals: 18, price: "15000" },
  USDT: { decimals: 6, price: "5.40" },
} as const;

/**
 * A sale as the coordinator's CreateTrade makes it: a quote, the trade on the lowest AVAILABLE
 * pool address (ASSIGNED), NOTIFY ponte_watch. USDT trades expect `contract` (lower case, as the
 * agent reports it). Works while the coordinator is down, too.
 */
export async function createTrade(sql: Sql, o: { symbol: keyof typeof ASSETS; amount: bigint; contract?: string }): Promise<Trade> {
  const asset = ASSETS[o.symbol];
  const contract = o.symbol === "USDT" ? (o.contract ?? "").toLowerCase() : "";
  if (o.symbol === "USDT" && !contract) throw new Error("a USDT trade needs the token contract");
  const fiat = (o.amount * parseBrl(asset.price)) / 10n ** BigInt(asset.decimals);
  return sql.begin(async (tx) => {
    const [a] = await tx<{ address: string }[]>`
      SELECT address FROM deposit_addresses WHERE network = ${NETWORK} AND status = 'AVAILABLE'
       ORDER BY derivation_index LIMIT 1 FOR UPDATE`;
    if (!a) throw new Error("the pool has no address left");
    const tradeId = newId("trade") as string;
    const quoteId = newId("quote") as string;
    await tx`INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price, spread_bps,
                                 network_fee_bps, spread_centavos, network_fee_centavos, expires_at, used_by_trade_id)
             VALUES (${quoteId}, 'user-evm-test', ${NETWORK}, ${o.symbol}, ${asset.decimals}, ${o.amount.toString()}, ${fiat.toString()},
                     ${asset.price}, 300, 25, 0, 0, now() + interval '60 seconds', ${tradeId})`;
    await tx`INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, contract, crypto_amount,
                                         fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address, expires_at,
                                         monitoring_until)
             VALUES (${tradeId}, 'user-evm-test', ${quoteId}, 'PENDING', ${NETWORK}, ${o.symbol}, ${asset.decimals}, ${contract},
                     ${o.amount.toString()}, ${fiat.toString()}, ${asset.price}, 300, 25, ${a.address},
                     now() + interval '30 minutes', now() + interval '1 day')`;
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
  contract: string;
  trade_id: string | null;
  block_height: bigint | null;
  block_hash: string | null;
}

/** The coordinator's deposits by tx_ref. */
export async function deposits(sql: Sql): Promise<Map<string, DepositRow>> {
  const rows = await sql<DepositRow[]>`
    SELECT tx_ref, status, amount::text AS amount, address, contract, trade_id, block_height, block_hash
      FROM deposits WHERE network = ${NETWORK}`;
  return new Map(rows.map((r) => [r.tx_ref, r]));
}

export const cursorHeight = async (sql: Sql): Promise<bigint | undefined> =>
  (await sql<{ height: bigint }[]>`SELECT height FROM chain_cursors WHERE network = ${NETWORK}`)[0]?.height;

export const pool = (sql: Sql) =>
  sql<{ address: string; derivation_index: bigint; derivation_path: string; status: string }[]>`
    SELECT address, derivation_index, derivation_path, status FROM deposit_addresses WHERE network = ${NETWORK} ORDER BY derivation_index`;

/**
 * The coordinator's stored blocks above `above`, grouped by the ReportBlocks call that stored
 * them (one transaction each: its blocks share created_at), in order.
 */
export const reportedBatches = (sql: Sql, above: bigint, upTo: bigint): Promise<{ from: bigint; blocks: number }[]> =>
  sql<{ from: bigint; blocks: number }[]>`
    SELECT min(height) AS from, count(*)::int AS blocks FROM chain_blocks
     WHERE network = ${NETWORK} AND height > ${above.toString()} AND height <= ${upTo.toString()}
     GROUP BY created_at ORDER BY min(height)`;

export const tradeStatus = async (sql: Sql, tradeId: string): Promise<string | undefined> =>
  (await sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${tradeId}`)[0]?.status;

export const history = async (sql: Sql, tradeId: string): Promise<string[]> =>
  (await sql<{ to_status: string }[]>`SELECT to_status FROM instant_trade_history WHERE trade_id = ${tradeId} ORDER BY version`).map((r) => r.to_status);

export const leaseOf = async (sql: Sql) =>
  (await sql<{ holder: string; epoch: bigint; lapsed: boolean }[]>`
    SELECT holder, epoch, expires_at <= now() AS lapsed FROM agent_leases WHERE network = ${NETWORK}`)[0];
