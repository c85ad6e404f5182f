import { createTestDatabase, withDatabase } from "@ponte/common/testing";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { listMigrations, migrate } from "./migrate.js";

// Each test starts from an empty database (no template) to exercise the runner itself.
async function emptyDb() {
  return createTestDatabase({ fingerprint: "empty", migrate: async () => {} });
}

describe("migrations", () => {
  const dbs: { drop: () => Promise<void> }[] = [];
  afterAll(async () => {
    for (const d of dbs) await d.drop();
  });

  it("apply to an empty database, record each version, and do nothing when re-run", async () => {
    const db = await emptyDb();
    dbs.push(db);
    const first = await migrate(db.url);
    expect(first).toEqual(listMigrations().map((m) => m.version));
    expect(await migrate(db.url)).toEqual([]);
    const sql = postgres(db.url, { max: 1 });
    const rows = await sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
    const tables = await sql<{ t: string }[]>`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'`;
    await sql.end();
    expect(rows.map((r) => r.version)).toEqual(first);
    for (const t of ["quotes", "instant_trades", "instant_trade_history", "deposits", "deposit_addresses", "system_wallets",
      "system_addresses", "transfer_transactions", "user_bank_data", "payouts", "outbox", "chain_cursors", "agent_leases",
      "idempotency_keys"]) {
      expect(tables.map((r) => r.t)).toContain(t);
    }
  });

  it("run from two replicas at once applies each migration exactly once", async () => {
    const db = await emptyDb();
    dbs.push(db);
    const [a, b] = await Promise.all([migrate(db.url), migrate(db.url)]);
    expect([...a, ...b].sort()).toEqual(listMigrations().map((m) => m.version));
  });

  it("keeps the audit history append-only", async () => {
    const db = await emptyDb();
    dbs.push(db);
    await migrate(db.url);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql`INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price, spread_bps,
                network_fee_bps, spread_centavos, network_fee_centavos, expires_at) VALUES ('q', 'u', 'n', 'S', 6, 1, 1, 1, 0, 0, 0, 0, now())`;
      await sql`INSERT INTO instant_trades (id, user_id, quote_id, status, network, symbol, decimals, crypto_amount, fiat_amount_centavos,
                price, spread_bps, network_fee_bps, deposit_address, expires_at, monitoring_until)
                VALUES ('t', 'u', 'q', 'PENDING', 'n', 'S', 6, 1, 1, 1, 0, 0, 'a', now(), now())`;
      await sql`INSERT INTO instant_trade_history (trade_id, version, to_status, actor) VALUES ('t', 1, 'PENDING', 'test')`;
      await expect(sql`UPDATE instant_trade_history SET reason = 'x'`).rejects.toMatchObject({ code: "23001" });
      await expect(sql`DELETE FROM instant_trade_history`).rejects.toMatchObject({ code: "23001" });
    } finally {
      await sql.end();
    }
  });

  it("refuses to start when an applied migration was edited", async () => {
    const db = await emptyDb();
    dbs.push(db);
    await migrate(db.url);
    const sql = postgres(withDatabase(db.url, db.name), { max: 1 });
    await sql`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`;
    await sql.end();
    await expect(migrate(db.url)).rejects.toThrow(/edited after it was applied/);
  });
});
