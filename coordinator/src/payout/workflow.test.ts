import { createLogger, PonteError } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { testDb } from "../_test/db.js";
import { createSql, type Sql } from "../db/index.js";
import { insertTrade } from "../_test/fixtures.js";
import { createCoordinatorMetrics } from "../metrics.js";
import { systemActor } from "../trade/actor.js";
import { transition } from "../trade/transition.js";
import type { TradeStatus } from "../trade/states.js";
import type { KeyOwner, PixProvider, ProviderPayout } from "./provider/index.js";
import { createPayouts, type PayoutOptions } from "./workflow.js";

let db: Awaited<ReturnType<typeof testDb>>;
beforeAll(async () => {
  db = await testDb();
});
afterAll(async () => {
  await db.close();
});

const CPF = "52998224725";
const transitions = { subjectPrefix: "ponte.trade" };

/** An in-memory provider: every key is held by the seller; each create is counted per key. */
function fakeProvider(outcome: ProviderPayout["status"]) {
  const creates = new Map<string, number>();
  const made = new Map<string, ProviderPayout>();
  const provider: PixProvider = {
    name: "fake",
    async resolveKey(key): Promise<KeyOwner> {
      return {
        key, keyType: "email", holderName: "Seller", taxId: CPF, taxIdMasked: false, ownerType: "natural",
        ispb: "18236120", branch: "0001", account: "1-0", accountType: "payment",
      };
    },
    async createPayout(req) {
      creates.set(req.ourKey, (creates.get(req.ourKey) ?? 0) + 1);
      const p = made.get(req.ourKey) ?? {
        provider: "fake", providerId: `tr_${made.size}`, ourKey: req.ourKey, amountCentavos: req.amountCentavos, status: outcome,
        providerStatus: outcome, destination: { name: "Seller", taxId: CPF, bankCode: "18236120", branch: "0001", account: "1-0" },
        tags: [], createdAt: new Date(), updatedAt: new Date(),
      };
      made.set(req.ourKey, p);
      return p;
    },
    async getPayout(ourKey) {
      return made.get(ourKey) ?? null;
    },
    async listPayouts() {
      return [...made.values()];
    },
    async verifyWebhook(): Promise<never> {
      throw new PonteError("INTERNAL", "no webhooks here");
    },
  };
  return { provider, creates };
}

const options = (o: Partial<PayoutOptions> = {}): PayoutOptions => ({
  maxCentavos: 1_000_000_000_000n, dailyMaxCentavos: 1_000_000_000_000n, nightMaxCentavos: 1_000_000_000_000n, nightStartHour: 20, nightEndHour: 6,
  timeZone: "America/Sao_Paulo", failurePolicy: "manual_review", checkScheduleMs: [60_000], reviewAfterMs: 3_600_000,
  intervalMs: 60_000, batchSize: 50, concurrency: 4, reconcileHourUtc: 24, ...o,
});

const payouts = (provider: PixProvider, o: Partial<PayoutOptions> = {}, sql: Sql = db.sql) =>
  createPayouts({
    sql,
    logger: createLogger({ name: "test", level: "silent" }),
    metrics: createCoordinatorMetrics(),
    provider,
    transitions,
    tolerance: { underBps: 100n, overBps: 100n },
    options: options(o),
  });

async function sellerTrade(status: TradeStatus): Promise<string> {
  const userId = `user-${Math.random().toString(36).slice(2, 10)}`;
  await db.sql`INSERT INTO user_bank_data (user_id, key_type, pix_key, holder_document, holder_name)
               VALUES (${userId}, 'email', ${`${userId}@example.com`}, ${CPF}, 'Seller')`;
  return insertTrade(db.sql, { status, userId });
}

const payoutOf = async (tradeId: string) =>
  (await db.sql<{ status: string; idempotency_key: string; trade: string }[]>`
    SELECT p.status, p.idempotency_key, t.status AS trade FROM instant_trades t LEFT JOIN payouts p ON p.trade_id = t.id
     WHERE t.id = ${tradeId}`)[0]!;

afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.PONTE_CRASH_AT;
});

describe("the payout workers", () => {
  it("prepare a confirmed trade and submit its payout in the same turn", async () => {
    const { provider, creates } = fakeProvider("processing");
    const id = await sellerTrade("PAYMENT_CONFIRMED");
    expect(await payouts(provider).runOnce(1)).toBe(1);
    const p = await payoutOf(id);
    expect(p).toMatchObject({ status: "PROCESSING", trade: "PAYOUT_PENDING" });
    expect(Object.fromEntries(creates)).toEqual({ [p.idempotency_key]: 1 });
  });

  it("after a crash between the committed payout and the provider call, submit it once, under its key", async () => {
    const { provider, creates } = fakeProvider("processing");
    const id = await sellerTrade("PAYMENT_CONFIRMED");
    // crashPoint() SIGKILLs the process; here the turn stops at that point instead.
    process.env.PONTE_CRASH_AT = "payout.after_prepare";
    vi.spyOn(process, "kill").mockImplementation(() => {
      throw new Error("killed at payout.after_prepare");
    });
    await expect(payouts(provider).runOnce()).rejects.toThrow("killed at payout.after_prepare");
    const atCrash = await payoutOf(id);
    expect(atCrash).toMatchObject({ status: "PENDING", trade: "PAYOUT_PENDING" });
    expect(creates.size).toBe(0);

    vi.restoreAllMocks();
    delete process.env.PONTE_CRASH_AT;
    const restarted = payouts(provider);
    expect(await restarted.runOnce()).toBe(1);
    expect(await restarted.runOnce()).toBe(0);
    expect(await payoutOf(id)).toMatchObject({ status: "PROCESSING", idempotency_key: atCrash.idempotency_key });
    expect(Object.fromEntries(creates)).toEqual({ [atCrash.idempotency_key]: 1 });
  });

  it("start the payouts of trades confirmed together at once, not each after the last one's call", async () => {
    const { provider, creates } = fakeProvider("processing");
    // The provider holds every call until released: only workers woken together can be inside it together.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let inside = 0;
    const create = provider.createPayout.bind(provider);
    provider.createPayout = async (req) => {
      inside++;
      await gate;
      return create(req);
    };
    const workers = payouts(provider);
    workers.start();
    try {
      await eventually(async () => {
        const [l] = await db.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE query ILIKE 'listen%ponte_payouts%'`;
        expect(l!.n).toBeGreaterThanOrEqual(1);
      });
      const ids = await Promise.all(Array.from({ length: 3 }, () => sellerTrade("DEPOSIT_DETECTED")));
      // One commit, one NOTIFY, as a block's report does.
      await db.sql.begin(async (tx) => {
        for (const tradeId of ids) {
          await transition(tx, transitions, { tradeId, from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", actor: systemActor("test"), reason: "final" });
        }
      });
      await eventually(() => expect(inside).toBe(3));
      release();
      await eventually(async () => {
        const rows = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM payouts WHERE trade_id IN ${db.sql(ids)} AND status = 'PROCESSING'`;
        expect(rows[0]!.n).toBe(3);
      });
      expect([...creates.values()]).toEqual([1, 1, 1]);
    } finally {
      release();
      await workers.stop();
    }
  });

  it("pay every trade once with two replicas woken by NOTIFY only (no polling)", async () => {
    const { provider, creates } = fakeProvider("success");
    const pools = [0, 1].map(() => createSql(db.url, { max: 6, applicationName: "payout-replica" }));
    const replicas = pools.map((sql) => payouts(provider, {}, sql));
    for (const r of replicas) r.start();
    try {
      await eventually(async () => {
        const [l] = await db.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'payout-replica' AND query ILIKE 'listen%ponte_payouts%'`;
        expect(l!.n).toBe(2);
      });
      const ids = await Promise.all(Array.from({ length: 30 }, () => sellerTrade("DEPOSIT_DETECTED")));
      // Confirmed a few at a time, as reports do; each commit sends NOTIFY ponte_payouts.
      for (let i = 0; i < ids.length; i += 3) {
        await db.sql.begin(async (tx) => {
          for (const tradeId of ids.slice(i, i + 3)) {
            await transition(tx, transitions, { tradeId, from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", actor: systemActor("test"), reason: "final" });
          }
        });
      }
      await eventually(async () => {
        const rows = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM instant_trades WHERE id IN ${db.sql(ids)} AND status = 'COMPLETED'`;
        expect(rows[0]!.n).toBe(ids.length);
      }, { timeout: 15_000 });
      const rows = await db.sql<{ trade_id: string; idempotency_key: string }[]>`
        SELECT trade_id, idempotency_key FROM payouts WHERE trade_id IN ${db.sql(ids)}`;
      expect(rows.length).toBe(ids.length);
      for (const r of rows) expect(creates.get(r.idempotency_key)).toBe(1);
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
      await Promise.all(pools.map((sql) => sql.end({ timeout: 5 })));
    }
  });
});
