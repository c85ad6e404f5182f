import { randomBytes } from "node:crypto";
import { createLogger, newId, type Registry } from "@ponte/common";
import type { Sql } from "@ponte/coordinator";
import { startTestCoordinator as startShared, type TestCoordinator } from "@ponte/coordinator/testing";
import { createCoordinatorClient } from "../client/index.js";
import type { AgentIdentity, ChainFamily, DerivedAddress } from "../types.js";

export type { TestCoordinator };

/** The real coordinator, in-process (@ponte/coordinator/testing), set up for this package's tests. */
export const startTestCoordinator = (env: Record<string, string> = {}): Promise<TestCoordinator> =>
  startShared({ name: "agent-runtime", env: { ...env } });

let networks = 0;
/** A network name of its own per test: leases, cursors and pools are per network. */
export const uniqueNetwork = (): string => `testnet-${process.pid}-${++networks}`;

const client = (address: string) => createCoordinatorClient({ address, logger: createLogger({ name: "agent-test-client", level: "silent" }) });

/** Registers agentId for the network over the real AgentService (granted or the test fails). */
export async function registerAgent(address: string, network: string, agentId: string, family: ChainFamily = "evm"): Promise<AgentIdentity> {
  const c = client(address);
  try {
    const g = await c.register({ network, agentId, leaseEpoch: 0n }, { family, chainId: "31337", version: "test" });
    if (!g.granted) throw new Error(`the lease of ${network} is held by ${g.holder}`);
    return { network, agentId, leaseEpoch: g.epoch };
  } finally {
    c.close();
  }
}

/**
 * Another agent takes the lease away from `holder`, as when holder's lease lapsed unnoticed
 * (a long pause): holder's lease is released, then `by` registers. Returns by's identity.
 */
export async function takeLease(address: string, holder: AgentIdentity, by: string): Promise<AgentIdentity> {
  const c = client(address);
  try {
    await c.release(holder);
    const g = await c.register({ network: holder.network, agentId: by, leaseEpoch: 0n }, { family: "evm", chainId: "31337", version: "test" });
    if (!g.granted) throw new Error(`${by} did not get the lease of ${holder.network}: ${g.holder} holds it`);
    return { network: holder.network, agentId: by, leaseEpoch: g.epoch };
  } finally {
    c.close();
  }
}

/** Stores deposit addresses through the AgentService, as an earlier agent of the network did. */
export async function stockPool(address: string, network: string, addresses: DerivedAddress[]): Promise<void> {
  const id = await registerAgent(address, network, `stocker-${randomBytes(3).toString("hex")}`);
  const c = client(address);
  try {
    await c.addDepositAddresses(id, addresses);
    await c.release(id);
  } finally {
    c.close();
  }
}

export interface LeaseRow {
  holder: string;
  epoch: bigint;
  expires_at: Date;
  renewed_at: Date;
  acquired_at: Date;
  lapsed: boolean;
}
export const leaseOf = async (sql: Sql, network: string): Promise<LeaseRow | undefined> =>
  (await sql<LeaseRow[]>`SELECT holder, epoch, expires_at, renewed_at, acquired_at, expires_at <= now() AS lapsed
                           FROM agent_leases WHERE network = ${network}`)[0];

export const cursorOf = async (sql: Sql, network: string) =>
  (await sql<{ height: bigint; hash: string; finalized_height: bigint }[]>`
    SELECT height, hash, finalized_height FROM chain_cursors WHERE network = ${network}`)[0];

export const poolOf = (sql: Sql, network: string) =>
  sql<{ address: string; derivation_index: bigint; derivation_path: string; status: string; trade_id: string | null }[]>`
    SELECT address, derivation_index, derivation_path, status, trade_id FROM deposit_addresses
     WHERE network = ${network} ORDER BY derivation_index`;

export const blocksOf = (sql: Sql, network: string) =>
  sql<{ height: bigint; hash: string }[]>`SELECT height, hash FROM chain_blocks WHERE network = ${network} ORDER BY height`;

export const depositOf = async (sql: Sql, network: string, txRef: string) =>
  (await sql<{ status: string; amount: string; address: string; contract: string; tx_hash: string; block_height: bigint | null; block_hash: string | null; from_address: string | null }[]>`
    SELECT status, amount::text AS amount, address, contract, tx_hash, block_height, block_hash, from_address
      FROM deposits WHERE network = ${network} AND tx_ref = ${txRef}`)[0];

export interface TradeSpec {
  /** Expected token contract; "" (the default) for the native asset. */
  contract?: string;
  /** Seconds until the coordinator stops watching the address (default a day). */
  monitorSeconds?: number;
  /** When the address was assigned, seconds ago (default: now). */
  assignedSecondsAgo?: number;
}

/**
 * Trades as the coordinator's CreateTrade makes them (a quote, the trade, its deposit address
 * ASSIGNED, NOTIFY ponte_watch), for networks without an asset in the registry. A spec with an
 * `address` stores that deposit address with its trade (derivation index = position + indexBase),
 * as if an earlier agent had; one without takes the lowest AVAILABLE pool address.
 */
export async function createTrades(
  sql: Sql,
  network: string,
  specs: (TradeSpec & { address?: string })[],
  o: { indexBase?: number } = {},
): Promise<{ tradeId: string; address: string }[]> {
  return sql.begin(async (tx) => {
    const wanted = specs.filter((s) => s.address === undefined).length;
    const pooled =
      wanted > 0
        ? await tx<{ address: string }[]>`
            SELECT address FROM deposit_addresses WHERE network = ${network} AND status = 'AVAILABLE'
             ORDER BY derivation_index LIMIT ${wanted} FOR UPDATE`
        : [];
    const rows = specs.map((s, i) => {
      const address = s.address ?? pooled.shift()?.address;
      if (!address) throw new Error(`the ${network} pool has no address left`);
      return { ...s, tradeId: newId("trade") as string, quoteId: newId("quote") as string, address, own: s.address !== undefined, index: (o.indexBase ?? 0) + i };
    });
    const col = <T>(f: (r: (typeof rows)[number]) => T) => rows.map(f);
    await tx`
      INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price, spread_bps,
                          network_fee_bps, spread_centavos, network_fee_centavos, expires_at, used_by_trade_id)
      SELECT q, 'user-agent-test', ${network}, 'TEST', 6, 100000000, 54000, '5.4', 300, 25, 1620, 135, now() + interval '60 seconds', t
        FROM unnest(${col((r) => r.quoteId)}::text[], ${col((r) => r.tradeId)}::text[]) AS x(q, t)`;
    await tx`
      INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, contract, crypto_amount,
                                  fiat_amount_centavos, price, spread_bps, network_fee_bps, deposit_address, expires_at,
                                  monitoring_until)
      SELECT t, 'user-agent-test', q, 'PENDING', ${network}, 'TEST', 6, c, 100000000, 54000, '5.4', 300, 25, a,
             now() + make_interval(secs => LEAST(m, 1800)), now() + make_interval(secs => m)
        FROM unnest(${col((r) => r.tradeId)}::text[], ${col((r) => r.quoteId)}::text[], ${col((r) => r.contract ?? "")}::text[],
                    ${col((r) => r.address)}::text[], ${col((r) => r.monitorSeconds ?? 86_400)}::float8[]) AS x(t, q, c, a, m)`;
    const own = rows.filter((r) => r.own);
    if (own.length > 0) {
      await tx`
        INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path)
        SELECT ${network}, a, i, 'm/0/' || i FROM unnest(${own.map((r) => r.address)}::text[], ${own.map((r) => r.index)}::bigint[]) AS x(a, i)`;
    }
    await tx`
      UPDATE deposit_addresses d SET status = 'ASSIGNED', trade_id = x.t, assigned_at = now() - make_interval(secs => x.ago)
        FROM unnest(${col((r) => r.address)}::text[], ${col((r) => r.tradeId)}::text[], ${col((r) => r.assignedSecondsAgo ?? 0)}::float8[]) AS x(a, t, ago)
       WHERE d.network = ${network} AND d.address = x.a`;
    await tx`SELECT pg_notify('ponte_watch', ${network})`;
    return rows.map((r) => ({ tradeId: r.tradeId, address: r.address }));
  });
}

/** A metric's value from an agent registry (histograms: name_count / name_sum), whatever the label order. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = registry.getSingleMetric(name.replace(/_(count|sum|bucket)$/, "")) ?? registry.getSingleMetric(name);
  if (!m) return undefined;
  const data = await m.get();
  const hit = data.values.find((v) => {
    const metricName = (v as { metricName?: string }).metricName ?? data.name;
    return metricName === name && Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val);
  });
  return hit?.value;
}

