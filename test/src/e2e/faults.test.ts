import { eventually, startNatsServer } from "@ponte/common/testing";
import { eventsv1 } from "@ponte/proto";
import fc from "fast-check";
import { AckPolicy, connect, DeliverPolicy } from "nats";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { evmAddresses, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const stacks: Stack[] = [];
const nats: { stop: () => Promise<void> }[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const s of stacks) await s.stop();
  for (const n of nats) await n.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function count(s: Stack, table: "quotes" | "instant_trades"): Promise<number> {
  const [r] = await s.sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${table}`);
  return r!.n;
}

describe("generated bad bodies", () => {
  it("quote and create answer 4xx with an error code for any invalid body, never 5xx, and write nothing", async () => {
    const s = await startStack();
    stacks.push(s);
    await stockAddressPool(s, "anvil", evmAddresses(5));
    const token = s.token("u-fuzz");
    const before = { q: await count(s, "quotes"), t: await count(s, "instant_trades") };
    const amount = fc.oneof(
      fc.string(),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom("0", "-1", "1e5", "0x10", "1.", ".5", "1.0000001", "9".repeat(60), " 1", "1 ", "NaN", ""),
      fc.integer(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 2 }),
    );
    const quoteBody = fc.record(
      {
        symbol: fc.oneof(fc.constantFrom("USDT", "DOGE", "", "usdt "), fc.string(), fc.integer()),
        network: fc.oneof(fc.constantFrom("anvil", "mars", ""), fc.string(), fc.boolean()),
        crypto_amount: amount,
        fiat_amount: amount,
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(quoteBody, async (body) => {
        const r = await s.api("/api/v1/instant-trade/quote", { token, body });
        if (r.status === 200) {
          // A generated body can be valid by chance; then it is a real quote of a known asset.
          expect(["USDT"]).toContain(r.body.symbol);
          return;
        }
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        expect(typeof r.body.error.code).toBe("string");
      }),
      { numRuns: 150 },
    );
    const createBody = fc.record(
      {
        quote_id: fc.oneof(fc.string(), fc.constantFrom("qte_00000000000000000000000000", "trd_x", ""), fc.integer()),
        refund_address: fc.oneof(fc.string(), fc.constant(refund), fc.constant("0x1234")),
        source: fc.string(),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(createBody, fc.oneof(fc.string({ maxLength: 200 }), fc.constant("k")), async (body, key) => {
        const r = await s.api("/api/v1/instant-trade/create", { token, body, headers: key ? { "idempotency-key": key } : {} });
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        expect(typeof r.body.error.code).toBe("string");
      }),
      { numRuns: 150 },
    );
    expect(await count(s, "instant_trades")).toBe(before.t);
    const [valid] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM quotes WHERE symbol <> 'USDT' OR network <> 'anvil'`;
    expect(valid!.n).toBe(0);
  });
});

describe("the coordinator down", () => {
  it("gateway answers 503 COORDINATOR_UNAVAILABLE and /readyz fails; both recover when it returns", async () => {
    const s = await startStack();
    stacks.push(s);
    const token = s.token("u-down");
    expect((await s.api("/readyz")).status).toBe(200);
    await s.coordinator.kill("SIGKILL");
    const r = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "USDT", network: "anvil", crypto_amount: "10" } });
    expect(r).toMatchObject({ status: 503, body: { error: { code: "COORDINATOR_UNAVAILABLE" } } });
    expect((await s.api("/readyz")).status).toBe(503);
    expect((await s.api("/healthz")).status).toBe(200);
    await s.restartCoordinator();
    await eventually(async () => expect((await s.api("/readyz")).status).toBe(200), { timeout: 15_000 });
    const ok = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "USDT", network: "anvil", crypto_amount: "10" } });
    expect(ok.status).toBe(200);
  });

  it("stops cleanly on SIGTERM", async () => {
    const s = await startStack();
    stacks.push(s);
    const code = await s.coordinator.kill("SIGTERM");
    expect(code).toBe(0);
    expect(s.coordinator.lines.some((l) => l.includes("Stopped"))).toBe(true);
    await s.restartCoordinator();
  });
});

describe("NATS down", () => {
  it("trades still work; their events arrive when NATS returns, each once", async () => {
    // Our own store dir: it must outlive the first server for the restart to keep the stream.
    const storeDir = mkdtempSync(join(tmpdir(), "ponte-nats-e2e-"));
    dirs.push(storeDir);
    const server = await startNatsServer({ storeDir });
    nats.push(server);
    const s = await startStack({ natsUrl: server.url });
    stacks.push(s);
    await stockAddressPool(s, "anvil", evmAddresses(5));
    const token = s.token("u-nats");
    const sale = async (key: string) => {
      const q = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "USDT", network: "anvil", crypto_amount: "10" } });
      const c = await s.api("/api/v1/instant-trade/create", { token, body: { quote_id: q.body.quote_id, refund_address: refund }, headers: { "idempotency-key": key } });
      expect(c.status).toBe(201);
      return c.body.id as string;
    };
    const first = await sale("n1");
    await eventually(async () => {
      const [r] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`;
      expect(r!.n).toBe(0);
    });
    await server.stop();
    const second = await sale("n2");
    const cancelled = await s.api(`/api/v1/instant-trade/${second}/cancel`, { token, method: "POST" });
    expect(cancelled.status).toBe(200);
    const [waiting] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`;
    expect(waiting!.n).toBe(2);
    const back = await startNatsServer({ port: server.port, storeDir });
    nats.push(back);
    await eventually(async () => {
      const [r] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`;
      expect(r!.n).toBe(0);
    }, { timeout: 20_000 });
    const nc = await connect({ servers: back.url });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.consumers.add(s.stream, { durable_name: "check", ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
      const consumer = await nc.jetstream().consumers.get(s.stream, "check");
      const events: eventsv1.TradeEvent[] = [];
      for await (const m of await consumer.fetch({ max_messages: 50, expires: 1_000 })) events.push(eventsv1.TradeEvent.decode(m.data));
      expect(events.map((e) => [e.tradeId === first ? "first" : e.tradeId === second ? "second" : e.tradeId, e.toStatus])).toEqual([
        ["first", "PENDING"],
        ["second", "PENDING"],
        ["second", "CANCELLED"],
      ]);
    } finally {
      await nc.close();
    }
  });
});
