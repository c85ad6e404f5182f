import { createLogger } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import { createCoordinatorMetrics } from "../metrics.js";
import { createOutboxRetention } from "./retention.js";

let db: Awaited<ReturnType<typeof testDb>>;
beforeAll(async () => {
  db = await testDb();
});
afterAll(async () => {
  await db.close();
});
beforeEach(async () => {
  await db.sql`TRUNCATE outbox`;
});

/** Outbox rows in seq order: each sent `hoursAgo` hours ago, or unsent (null). */
async function rows(...sentHoursAgo: (number | null)[]): Promise<bigint[]> {
  const seqs: bigint[] = [];
  for (const [i, h] of sentHoursAgo.entries()) {
    const [r] = await db.sql<{ seq: bigint }[]>`
      INSERT INTO outbox (event_id, trade_id, subject, payload, created_at, sent_at)
      VALUES (${`evt_retention_${i}`}, NULL, 'ponte.trade.test', '\\x00',
              now() - make_interval(hours => ${(h ?? 0) + 1}), ${h === null ? null : db.sql`now() - make_interval(hours => ${h})`})
      RETURNING seq`;
    seqs.push(r!.seq);
  }
  return seqs;
}

const remaining = async () => (await db.sql<{ seq: bigint }[]>`SELECT seq FROM outbox ORDER BY seq`).map((r) => r.seq);

const retention = (batchSize: number) => {
  const metrics = createCoordinatorMetrics();
  return {
    metrics,
    worker: createOutboxRetention({
      sql: db.sql,
      logger: createLogger({ name: "test", level: "silent" }),
      metrics,
      options: { retentionHours: 168, intervalMs: 60_000, batchSize },
    }),
  };
};

describe("outbox retention", () => {
  it("deletes published events past the retention across several batches, and keeps the recent ones", async () => {
    const seqs = await rows(400, 300, 200, 170, 169, 100, 1);
    const { worker, metrics } = retention(2);
    expect(await worker.runOnce()).toBe(5);
    expect(await remaining()).toEqual(seqs.slice(5));
    const items = await metrics.workerItems.get();
    expect(items.values.find((v) => v.labels.worker === "outbox_retention")?.value).toBe(5);
    // Nothing more is old enough: a second pass deletes nothing.
    expect(await worker.runOnce()).toBe(0);
    expect(await remaining()).toEqual(seqs.slice(5));
  });

  it("never deletes an unsent event, and stops at it until it is sent", async () => {
    const seqs = await rows(300, null, 300, 200);
    const { worker } = retention(10);
    expect(await worker.runOnce()).toBe(1);
    expect(await remaining()).toEqual(seqs.slice(1));
    // The relay sends it (long ago, as far as the clock is concerned): the rest goes with it.
    await db.sql`UPDATE outbox SET sent_at = now() - interval '180 hours' WHERE seq = ${seqs[1]!.toString()}`;
    expect(await worker.runOnce()).toBe(3);
    expect(await remaining()).toEqual([]);
  });

  it("stops at the first recent event, leaving older ones behind it for a later pass", async () => {
    // Seq order is commit order only roughly: a row sent late may sit before older ones.
    const seqs = await rows(300, 2, 300);
    const { worker } = retention(10);
    expect(await worker.runOnce()).toBe(1);
    expect(await remaining()).toEqual(seqs.slice(1));
  });

  it("runs on its interval once started, and stops", async () => {
    await rows(300, 300, 1);
    const { worker } = retention(1);
    worker.start();
    try {
      await eventually(async () => (await remaining()).length === 1);
    } finally {
      await worker.stop();
    }
  });
});
