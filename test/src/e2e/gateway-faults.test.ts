import { eventually } from "@ponte/common/testing";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evmAddresses, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

// The gateway in front of a real coordinator that misbehaves: hung (SIGSTOP, so every call runs
// into the gateway's deadline), without its database, and failing with an error it did not
// expect. (faults.test.ts covers the coordinator killed outright.)

let s: Stack;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const API = "/api/v1/instant-trade";
// The harness starts the gateway with the defaults: COORDINATOR_DEADLINE_MS 5000, READY_DEADLINE_MS 1000.
const DEADLINE_MS = 5_000;
const READY_DEADLINE_MS = 1_000;

beforeAll(async () => {
  s = await startStack();
  await stockAddressPool(s, "anvil", evmAddresses(5));
});
afterAll(async () => {
  if (s) s.coordinator.child.kill("SIGCONT");
  await s?.stop();
});

async function newTrade(sub: string) {
  const q = await s.api(`${API}/quote`, { token: s.token(sub), body: { symbol: "USDT", network: "anvil", crypto_amount: "10" } });
  const c = await s.api(`${API}/create`, {
    token: s.token(sub),
    body: { quote_id: q.body.quote_id, refund_address: refund },
    headers: { "idempotency-key": `k-${q.body.quote_id}` },
  });
  expect(c.status).toBe(201);
  return c.body as { id: string };
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const v = await p;
  return [v, Date.now() - started];
}

describe("a coordinator that does not answer", () => {
  it("is 503 COORDINATOR_UNAVAILABLE at the deadline (calls, /readyz, webhooks); all recover when it resumes", async () => {
    const t = await newTrade("u-hang");
    const token = s.token("u-hang");
    s.coordinator.child.kill("SIGSTOP");
    try {
      const [[get, getMs], [ready, readyMs], [hook]] = await Promise.all([
        timed(s.api(`${API}/${t.id}`, { token })),
        timed(s.api("/readyz")),
        timed(s.api("/api/v1/webhooks/pix/starkbank", { body: '{"event":{}}' })),
      ]);
      expect(get).toMatchObject({ status: 503, body: { error: { code: "COORDINATOR_UNAVAILABLE" } } });
      expect(getMs).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
      expect(getMs).toBeLessThan(DEADLINE_MS + 3_000);
      // The probe has its own, shorter deadline.
      expect(ready).toMatchObject({ status: 503, body: { status: "not_ready", error: { code: "COORDINATOR_UNAVAILABLE" } } });
      expect(readyMs).toBeGreaterThanOrEqual(READY_DEADLINE_MS - 100);
      expect(readyMs).toBeLessThan(DEADLINE_MS);
      // 503 tells the PIX provider to send the event again.
      expect(hook).toMatchObject({ status: 503, body: { error: { code: "COORDINATOR_UNAVAILABLE" } } });
      expect((await s.api("/healthz")).status).toBe(200);
    } finally {
      s.coordinator.child.kill("SIGCONT");
    }
    await eventually(async () => expect((await s.api("/readyz")).status).toBe(200), { timeout: 15_000 });
    expect(await s.api(`${API}/${t.id}`, { token })).toMatchObject({ status: 200, body: { id: t.id } });
  });
});

describe("a coordinator without its database", () => {
  it("makes /readyz 503 not_ready while the gateway stays alive; ready again once the database is back", async () => {
    const name = new URL(s.dbUrl).pathname.slice(1);
    const adminUrl = new URL(s.dbUrl);
    adminUrl.pathname = "/postgres";
    const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} });
    try {
      expect((await s.api("/readyz")).status).toBe(200);
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`;
      await eventually(async () => {
        const r = await s.api("/readyz");
        expect(r).toMatchObject({ status: 503, body: { status: "not_ready" } });
        // The coordinator answered (its database is the problem), so this is not its being unreachable.
        expect(r.body.error.code).not.toBe("COORDINATOR_UNAVAILABLE");
        expect(typeof r.body.error.message).toBe("string");
      });
      expect((await s.api("/healthz")).status).toBe(200);
      expect(s.coordinator.exitCode).toBeNull();
    } finally {
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    await eventually(async () => expect((await s.api("/readyz")).status).toBe(200), { timeout: 20_000 });
  });
});

describe("a coordinator failing unexpectedly", () => {
  it("is a bare 500 INTERNAL: nothing of the failure reaches the client", async () => {
    const t = await newTrade("u-boom");
    // A real failure inside the coordinator's transaction, for this one trade only.
    await s.sql.unsafe(`
      CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.id = '${t.id}' THEN RAISE EXCEPTION 'disk full at /var/lib/postgresql password=hunter2'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_boom BEFORE UPDATE ON instant_trades FOR EACH ROW EXECUTE FUNCTION test_boom();`);
    try {
      const r = await s.api(`${API}/${t.id}/cancel`, { token: s.token("u-boom"), method: "POST" });
      expect(r).toEqual({ status: 500, body: { error: { code: "INTERNAL", message: "internal error", details: {} } } });
      expect(JSON.stringify(r.body)).not.toContain("hunter2");
    } finally {
      await s.sql.unsafe("DROP TRIGGER test_boom ON instant_trades; DROP FUNCTION test_boom();");
    }
    // The trade is untouched, and the same call works once the fault is gone.
    expect(await s.api(`${API}/${t.id}/cancel`, { token: s.token("u-boom"), method: "POST" })).toMatchObject({ status: 200, body: { status: "CANCELLED" } });
  });
});
