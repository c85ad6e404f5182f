import { createLogger } from "@ponte/common";
import { eventually, startNatsServer } from "@ponte/common/testing";
import { eventsv1 } from "@ponte/proto";
import { AckPolicy, connect, DeliverPolicy, ErrorCode, NatsError } from "nats";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { testDb } from "../_test/db.js";
import { insertTrade } from "../_test/fixtures.js";
import { createCoordinatorMetrics } from "../metrics.js";
import { transition } from "../trade/transition.js";
import { createOutboxRelay } from "./relay.js";

let db: Awaited<ReturnType<typeof testDb>>;
beforeAll(async () => {
  db = await testDb();
});
afterAll(async () => {
  await db.close();
});

/** A relay (not started) on a NATS server of its own, with its own stream and subjects. */
async function relayOnFreshNats(pollMs: number) {
  const nats = await startNatsServer({ storeDir: mkdtempSync(join(tmpdir(), "ponte-nats-relay-")) });
  const suffix = randomBytes(4).toString("hex");
  const prefix = `t${suffix}.trade`;
  const relay = createOutboxRelay({
    sql: db.sql,
    logger: createLogger({ name: "test", level: "silent" }),
    metrics: createCoordinatorMetrics(),
    options: { natsUrl: nats.url, stream: `T_${suffix}`, subjectPrefix: prefix, duplicateWindowMs: 120_000, batchSize: 16, pollMs },
  });
  return { nats, prefix, relay };
}

describe("the outbox relay", () => {
  it("publishes every transition once, in order, across a NATS restart; nothing lost while NATS is down", async () => {
    const storeDir = mkdtempSync(join(tmpdir(), "ponte-nats-relay-"));
    const nats = await startNatsServer({ storeDir });
    const suffix = randomBytes(4).toString("hex");
    const stream = `T_${suffix}`;
    const prefix = `t${suffix}.trade`;
    const ctx = { subjectPrefix: prefix };
    const relay = createOutboxRelay({
      sql: db.sql,
      logger: createLogger({ name: "test", level: "silent" }),
      metrics: createCoordinatorMetrics(),
      options: { natsUrl: nats.url, stream, subjectPrefix: prefix, duplicateWindowMs: 120_000, batchSize: 16, pollMs: 50 },
    });
    relay.start();
    let restarted: Awaited<ReturnType<typeof startNatsServer>> | undefined;
    try {
      const ids = await Promise.all(Array.from({ length: 10 }, () => insertTrade(db.sql)));
      const move = (id: string, from: "PENDING" | "DEPOSIT_DETECTED", to: "DEPOSIT_DETECTED" | "PENDING") =>
        db.sql.begin((tx) => transition(tx, ctx, { tradeId: id, from, to, actor: { kind: "agent", id: "anvil" }, reason: "t" }));
      for (const id of ids) await move(id, "PENDING", "DEPOSIT_DETECTED");
      await eventually(async () => {
        const [r] = await db.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL`;
        return r!.n === 0n;
      });

      await nats.stop(); // same port and store below: the stream and its duplicate window survive
      for (const id of ids) await move(id, "DEPOSIT_DETECTED", "PENDING");
      const [waiting] = await db.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL`;
      expect(waiting!.n).toBe(10n);

      restarted = await startNatsServer({ port: nats.port, storeDir });
      await eventually(async () => {
        const [r] = await db.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL`;
        return r!.n === 0n;
      }, { timeout: 20_000 });

      // Consumed = transitions made (20), each event once, each trade's events in version order.
      const nc = await connect({ servers: restarted.url });
      const jsm = await nc.jetstreamManager();
      await jsm.consumers.add(stream, { durable_name: "check", ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
      const consumer = await nc.jetstream().consumers.get(stream, "check");
      const seen: eventsv1.TradeEvent[] = [];
      const batch = await consumer.fetch({ max_messages: 100, expires: 1_000 });
      for await (const m of batch) seen.push(eventsv1.TradeEvent.decode(m.data));
      await nc.close();
      expect(seen).toHaveLength(20);
      expect(new Set(seen.map((e) => e.eventId)).size).toBe(20);
      for (const id of ids) {
        expect(seen.filter((e) => e.tradeId === id).map((e) => [e.version, e.toStatus])).toEqual([
          [2n, "DEPOSIT_DETECTED"],
          [3n, "PENDING"],
        ]);
      }
    } finally {
      await relay.stop();
      await restarted?.stop();
      await nats.stop();
      rmSync(storeDir, { recursive: true, force: true });
    }
  });
  // patches/nats+2.29.3.patch: nats.js built a "Cancelled" NatsError (a stack trace) for every
  // answered request, JetStream publishes included, only to reject a settled promise with it.
  it("builds no error per published event (the nats.js patch is applied)", async () => {
    const { nats, prefix, relay } = await relayOnFreshNats(50);
    const errors = vi.spyOn(NatsError, "errorForCode");
    relay.start();
    try {
      const ids = await Promise.all(Array.from({ length: 5 }, () => insertTrade(db.sql)));
      for (const tradeId of ids) {
        await db.sql.begin((tx) =>
          transition(tx, { subjectPrefix: prefix }, { tradeId, from: "PENDING", to: "DEPOSIT_DETECTED", actor: { kind: "agent", id: "anvil" }, reason: "t" }),
        );
      }
      await eventually(async () => {
        const [r] = await db.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM outbox WHERE trade_id IN ${db.sql(ids)} AND sent_at IS NULL`;
        return r!.n === 0n;
      });
      expect(errors.mock.calls.filter(([code]) => code === ErrorCode.Cancelled)).toEqual([]);
    } finally {
      errors.mockRestore();
      await relay.stop();
      await nats.stop();
    }
  });

  // An event whose NOTIFY was lost (sent while LISTEN's connection was down) used to wait for the
  // next poll; now LISTEN coming back is news. The poll here is 10 minutes: only that can do it.
  it("publishes at once when LISTEN comes back after its connection dropped", async () => {
    const { nats, prefix, relay } = await relayOnFreshNats(600_000);
    relay.start();
    try {
      const tradeId = await insertTrade(db.sql);
      await db.sql.begin((tx) =>
        transition(tx, { subjectPrefix: prefix }, { tradeId, from: "PENDING", to: "DEPOSIT_DETECTED", actor: { kind: "agent", id: "anvil" }, reason: "t" }),
      );
      const unsent = async () =>
        (await db.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM outbox WHERE trade_id = ${tradeId} AND sent_at IS NULL`)[0]!.n;
      await eventually(async () => (await unsent()) === 0n);
      // Unsent again with no NOTIFY (as if it had been lost), then LISTEN's connection drops.
      await db.sql`UPDATE outbox SET sent_at = NULL WHERE trade_id = ${tradeId}`;
      const dropped = await db.sql`
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`;
      expect(dropped.length).toBeGreaterThan(0);
      await eventually(async () => (await unsent()) === 0n, { timeout: 10_000 });
    } finally {
      await relay.stop();
      await nats.stop();
    }
  });
});
