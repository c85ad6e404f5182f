import { createLogger } from "@ponte/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import { insertTrade } from "../_test/fixtures.js";
import { createCoordinatorMetrics } from "../metrics.js";
import { createExpiryWorker } from "./worker.js";

let db: Awaited<ReturnType<typeof testDb>>;
beforeAll(async () => {
  db = await testDb();
});
afterAll(async () => {
  await db.close();
});

const worker = () =>
  createExpiryWorker({
    sql: db.sql,
    logger: createLogger({ name: "test", level: "silent" }),
    metrics: createCoordinatorMetrics(),
    transitions: { subjectPrefix: "ponte.trade" },
    intervalMs: 1_000,
    batchSize: 7,
  });

describe("the expiry worker", () => {
  it("expires every PENDING trade past its deadline exactly once, with two replicas racing", async () => {
    const due = await Promise.all(Array.from({ length: 40 }, () => insertTrade(db.sql, { expiresInSeconds: -5 })));
    const notDue = await insertTrade(db.sql, { expiresInSeconds: 600 });
    const detected = await insertTrade(db.sql, { status: "DEPOSIT_DETECTED", expiresInSeconds: -5 });
    const [a, b] = await Promise.all([worker().runOnce(), worker().runOnce()]);
    expect(a + b).toBe(40);
    const rows = await db.sql<{ id: string; status: string }[]>`SELECT id, status FROM instant_trades`;
    const status = new Map(rows.map((r) => [r.id, r.status]));
    for (const id of due) expect(status.get(id)).toBe("EXPIRED");
    expect(status.get(notDue)).toBe("PENDING");
    expect(status.get(detected)).toBe("DEPOSIT_DETECTED");
    const [h] = await db.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM instant_trade_history WHERE to_status = 'EXPIRED'`;
    expect(h!.n).toBe(40n);
    expect(await worker().runOnce()).toBe(0);
  });
});
