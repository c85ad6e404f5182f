import type postgres from "postgres";
import type { Sql } from "./postgres.js";

// Trades waiting for deposits, written straight into the coordinator's tables (the set-up of a
// benchmark is not what it measures). Ids have the product's shape (prefix + 26 characters of
// its alphabet) and grow with the row number, like the product's time-ordered ids, so bulk
// loads append to the indexes. Each trade has its quote and its ASSIGNED deposit address, so
// the coordinator's watch stream and deposit accounting see them as real trades.

export interface TradeSpec {
  address: string;
  symbol: string;
  decimals: number;
  /** Token contract, lower case; "" for the native asset. */
  contract: string;
  /** Expected amount, base units. */
  amount: bigint;
}

/** FK checks off for the bulk load (superuser only; the data is consistent by construction). */
async function fastLoad(tx: postgres.TransactionSql<{ bigint: bigint }>): Promise<void> {
  const [su] = await tx<{ su: boolean }[]>`SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`;
  if (su?.su) await tx`SET LOCAL session_replication_role = replica`;
}
const idExpr = (prefix: string, tag: string) => `'${prefix}_${tag}' || lpad(to_hex(i), ${22}, '0')`;

/**
 * `count` ETH trades on `network`, generated in SQL (fast for a million). Addresses are 40 hex
 * digits: the row number, then an md5 tail; `tag` (4 characters of 0-9a-f) keeps batches apart.
 * Mixed case, as the EVM agent stores them (EIP-55 checksummed; these are not valid checksums,
 * but an agent holds them the same way: keyed lower-case, spelled as stored).
 */
export async function generateTrades(sql: Sql, o: { network: string; count: number; tag: string; amount?: bigint; firstIndex?: number }): Promise<void> {
  if (o.count === 0) return;
  if (!/^[0-9a-f]{4}$/.test(o.tag)) throw new Error("tag must be 4 hex digits");
  const amount = (o.amount ?? 10_000_000_000_000_000n).toString();
  const first = o.firstIndex ?? 1;
  const tail = `md5('${o.tag}' || ${lit(o.network)} || i)`;
  const addr = `'0x' || lpad(to_hex(i), 8, '0') || upper(substr(${tail}, 1, 16)) || substr(${tail}, 17)`;
  await sql.begin(async (tx) => {
    await fastLoad(tx);
    await tx.unsafe(`
      INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price, spread_bps,
                          network_fee_bps, spread_centavos, network_fee_centavos, expires_at, used_by_trade_id)
      SELECT ${idExpr("qte", o.tag)}, 'bench-user-' || (i % 1000), ${lit(o.network)}, 'ETH', 18, ${amount}, 14512, 15000, 300, 25, 450, 37,
             now() + interval '1 day', ${idExpr("trd", o.tag)}
        FROM generate_series(${first}, ${first + o.count - 1}) i`);
    await tx.unsafe(`
      INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, contract, crypto_amount,
                                  fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address, expires_at, monitoring_until)
      SELECT ${idExpr("trd", o.tag)}, 'bench-user-' || (i % 1000), ${idExpr("qte", o.tag)}, 'PENDING', ${lit(o.network)}, 'ETH', 18, '',
             ${amount}, 14512, 15000, 300, 25, ${addr}, now() + interval '1 day', now() + interval '2 days'
        FROM generate_series(${first}, ${first + o.count - 1}) i`);
    await tx.unsafe(`
      INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status, trade_id, assigned_at)
      SELECT ${lit(o.network)}, ${addr}, i, 'm/44''/60''/0''/0/' || i, 'ASSIGNED', ${idExpr("trd", o.tag)}, now()
        FROM generate_series(${first}, ${first + o.count - 1}) i`);
  });
}

/** Addresses generateTrades made, in row order. */
export async function generatedAddresses(sql: Sql, network: string, tag: string): Promise<{ address: string; tradeId: string }[]> {
  const rows = await sql<{ address: string; id: string }[]>`
    SELECT deposit_address AS address, id FROM instant_trades WHERE network = ${network} AND id LIKE ${`trd_${tag}%`} ORDER BY id`;
  return rows.map((r) => ({ address: r.address, tradeId: r.id }));
}

/** Trades for given addresses and assets (chain benchmarks, where the chain pays them). */
export async function insertTrades(sql: Sql, o: { network: string; tag: string; trades: TradeSpec[]; firstIndex?: number }): Promise<string[]> {
  if (!/^[0-9a-f]{4}$/.test(o.tag)) throw new Error("tag must be 4 hex digits");
  const first = o.firstIndex ?? 1;
  const ids: string[] = [];
  const CHUNK = 20_000;
  for (let start = 0; start < o.trades.length; start += CHUNK) {
    const part = o.trades.slice(start, start + CHUNK);
    const idx = part.map((_, j) => first + start + j);
    const hex = (i: number) => i.toString(16).padStart(22, "0");
    const tradeIds = idx.map((i) => `trd_${o.tag}${hex(i)}`);
    const quoteIds = idx.map((i) => `qte_${o.tag}${hex(i)}`);
    ids.push(...tradeIds);
    await sql.begin(async (tx) => {
      await fastLoad(tx);
      const cols = {
        id: tradeIds,
        q: quoteIds,
        addr: part.map((t) => t.address.toLowerCase()),
        sym: part.map((t) => t.symbol),
        dec: part.map((t) => String(t.decimals)),
        con: part.map((t) => t.contract.toLowerCase()),
        amt: part.map((t) => t.amount.toString()),
        ix: idx.map(String),
      };
      await tx`
        INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price, spread_bps,
                            network_fee_bps, spread_centavos, network_fee_centavos, expires_at, used_by_trade_id)
        SELECT u.q, 'bench-user-' || (u.ix::bigint % 1000), ${o.network}, u.sym, u.dec::int, u.amt::numeric, 14512, 15000, 300, 25, 450, 37,
               now() + interval '1 day', u.id
          FROM unnest(${cols.q}::text[], ${cols.id}::text[], ${cols.sym}::text[], ${cols.dec}::text[], ${cols.amt}::text[], ${cols.ix}::text[])
               AS u(q, id, sym, dec, amt, ix)`;
      await tx`
        INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, contract, crypto_amount,
                                    fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address, expires_at, monitoring_until)
        SELECT u.id, 'bench-user-' || (u.ix::bigint % 1000), u.q, 'PENDING', ${o.network}, u.sym, u.dec::int, u.con, u.amt::numeric,
               14512, 15000, 300, 25, u.addr, now() + interval '1 day', now() + interval '2 days'
          FROM unnest(${cols.id}::text[], ${cols.q}::text[], ${cols.sym}::text[], ${cols.dec}::text[], ${cols.con}::text[],
                      ${cols.amt}::text[], ${cols.addr}::text[], ${cols.ix}::text[]) AS u(id, q, sym, dec, con, amt, addr, ix)`;
      await tx`
        INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status, trade_id, assigned_at)
        SELECT ${o.network}, u.addr, u.ix::bigint, 'm/44''/60''/0''/0/' || u.ix, 'ASSIGNED', u.id, now()
          FROM unnest(${cols.addr}::text[], ${cols.id}::text[], ${cols.ix}::text[]) AS u(addr, id, ix)`;
    });
  }
  return ids;
}

/**
 * Everything the benchmarks write, emptied between runs (trades included). A coordinator may
 * still be running its workers: TRUNCATE takes its table locks one by one, so it can deadlock
 * with a worker's transaction (40P01, Postgres aborts one side); it is simply run again.
 */
export async function truncateAll(sql: Sql): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`TRUNCATE instant_trade_history, outbox, deposits, chain_blocks, chain_cursors, agent_leases, payouts,
                         idempotency_keys, deposit_addresses, instant_trades, quotes CASCADE`;
      return;
    } catch (err) {
      if (attempt >= 5 || (err as { code?: string }).code !== "40P01") throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** Puts every trade of `network` back to PENDING and forgets the chain (the trades stay). */
export async function resetChainState(sql: Sql, network: string): Promise<void> {
  await sql`TRUNCATE instant_trade_history, outbox, chain_blocks, chain_cursors, agent_leases`;
  // seedHistory's settled trades (no longer monitored) and their deposits stay.
  await sql`DELETE FROM deposits WHERE tx_ref NOT LIKE 'hist:%'`;
  await sql`UPDATE instant_trades SET status = 'PENDING', version = 1, received_amount = 0, confirmed_amount = 0, updated_at = now()
             WHERE network = ${network} AND monitoring_until > now() AND (status <> 'PENDING' OR version <> 1)`;
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Fills the network's pool of AVAILABLE deposit addresses (so the agent derives none while measured). */
export async function stockPool(sql: Sql, o: { network: string; count: number; firstIndex: number; tag: string }): Promise<void> {
  await sql.unsafe(`
    INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status)
    SELECT ${lit(o.network)}, '0x' || md5('pool' || ${lit(o.tag)} || i) || lpad(to_hex(i), 8, '0'), i, 'm/44''/60''/0''/0/' || i, 'AVAILABLE'
      FROM generate_series(${o.firstIndex}, ${o.firstIndex + o.count - 1}) i`);
}

/**
 * A desk that has been running: `count` settled trades on `network`, each COMPLETED with its
 * CONFIRMED deposit, for the tables' statistics. On a fresh database the deposits table is empty
 * when ANALYZE runs, and Postgres caches generic plans made for an empty table (sequential scans)
 * that are kept as it grows, until autovacuum's first ANALYZE, which a run of a minute or two
 * never sees: B4's deposit reads grew from 0.1 to 10 ms over one run (bench/README.md, B4). No
 * running desk has an empty deposits table. The trades have no transfer orders: for benchmarks
 * whose coordinator does not plan sweeps. Derivation indexes start at `firstIndex` (keep them
 * clear of the run's trades); `tag` as for generateTrades.
 */
export async function seedHistory(sql: Sql, o: { network: string; count: number; tag: string; firstIndex: number }): Promise<void> {
  await generateTrades(sql, { network: o.network, count: o.count, tag: o.tag, firstIndex: o.firstIndex });
  const ids = `trd_${o.tag}%`;
  await sql.begin(async (tx) => {
    await fastLoad(tx);
    // Settled a day ago: no longer watched.
    await tx`UPDATE instant_trades SET status = 'COMPLETED', received_amount = crypto_amount, confirmed_amount = crypto_amount,
                     expires_at = now() - interval '2 days', monitoring_until = now() - interval '1 day'
              WHERE network = ${o.network} AND id LIKE ${ids}`;
    await tx`
      INSERT INTO deposits (network, tx_ref, tx_hash, address, amount, trade_id, status, block_height, block_hash, from_address)
      SELECT network, 'hist:' || id, 'hist:' || id, deposit_address, crypto_amount, id, 'CONFIRMED', 0, 'hist', '0x000000000000000000000000000000000000dEaD'
        FROM instant_trades WHERE network = ${o.network} AND id LIKE ${ids}`;
  });
}
