import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evmAddresses, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

// Every route of the frontend's API, end to end: HTTP → gateway → gRPC → coordinator → Postgres.
let s: Stack;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

beforeAll(async () => {
  s = await startStack({ env: { DAILY_LIMIT_BRL: "5000.00", TRADE_MAX_BRL: "3000.00" } });
  await stockAddressPool(s, "anvil", evmAddresses(30));
});
afterAll(async () => {
  await s?.stop();
});

async function quote(token: string, body: Record<string, unknown> = { symbol: "USDT", network: "anvil", crypto_amount: "100.5" }) {
  return s.api("/api/v1/instant-trade/quote", { token, body });
}
async function create(token: string, quoteId: string, key: string, extra: Record<string, unknown> = {}) {
  return s.api("/api/v1/instant-trade/create", {
    token,
    body: { quote_id: quoteId, refund_address: refund, ...extra },
    headers: { "idempotency-key": key },
  });
}
async function newTrade(user: string) {
  const q = await quote(s.token(user));
  expect(q.status).toBe(200);
  const c = await create(s.token(user), q.body.quote_id, `k-${q.body.quote_id}`);
  expect(c.status).toBe(201);
  return c.body;
}

describe("assets and quotes", () => {
  it("lists the registry's assets with prices", async () => {
    const r = await s.api("/api/v1/instant-trade/assets", { token: s.token("u-assets") });
    expect(r.status).toBe(200);
    const usdt = r.body.assets.find((a: any) => a.symbol === "USDT" && a.network === "anvil");
    expect(usdt).toMatchObject({ decimals: 6, enabled: true, price: "5.4" });
  });

  it("quotes by crypto amount: BRL floored to the centavo after 3 % spread and 0.25 % fee", async () => {
    const r = await quote(s.token("u-q1"));
    expect(r.status).toBe(200);
    // 100.5 × 5.40 = 542.70 BRL; × (1 − 0.03 − 0.0025) = 525.06225 → floored to 525.06
    expect(r.body).toMatchObject({ symbol: "USDT", network: "anvil", crypto_amount: "100.5", fiat_amount: "525.06", price: "5.4" });
    expect(r.body.quote_id).toMatch(/^qte_/);
    const ttl = Date.parse(r.body.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(61_000);
  });

  it("quotes by BRL amount: the crypto amount pays at least the BRL asked", async () => {
    const r = await quote(s.token("u-q2"), { symbol: "USDT", network: "anvil", fiat_amount: "100.00" });
    expect(r.status).toBe(200);
    expect(r.body.fiat_amount).toBe("100.00");
    // 100 / (5.40 × 0.9675) = 19.1405876… → rounded up to 6 decimals
    expect(r.body.crypto_amount).toBe("19.140588");
  });

  it("refuses bad amounts and assets with a 4xx code and writes nothing", async () => {
    const t = s.token("u-bad");
    const cases: [Record<string, unknown>, number, string][] = [
      [{ symbol: "USDT", network: "anvil", crypto_amount: "1.1234567" }, 422, "INVALID_AMOUNT"],
      [{ symbol: "USDT", network: "anvil", crypto_amount: "0" }, 422, "INVALID_AMOUNT"],
      [{ symbol: "USDT", network: "anvil", crypto_amount: "-1" }, 422, "VALIDATION_ERROR"],
      [{ symbol: "USDT", network: "anvil", crypto_amount: "9".repeat(39) }, 422, "AMOUNT_TOO_LARGE"],
      [{ symbol: "USDT", network: "anvil", crypto_amount: "9".repeat(80) }, 422, "VALIDATION_ERROR"],
      [{ symbol: "USDT", network: "anvil", crypto_amount: 5 }, 422, "VALIDATION_ERROR"],
      [{ symbol: "DOGE", network: "anvil", crypto_amount: "1" }, 422, "ASSET_NOT_FOUND"],
      [{ symbol: "USDT", network: "mars", crypto_amount: "1" }, 422, "ASSET_NOT_FOUND"],
      [{ symbol: "USDT", network: "anvil" }, 422, "VALIDATION_ERROR"],
      [{ symbol: "USDT", network: "anvil", crypto_amount: "1", fiat_amount: "1" }, 422, "VALIDATION_ERROR"],
    ];
    for (const [body, status, code] of cases) {
      const r = await quote(t, body);
      expect({ body, status: r.status, code: r.body?.error?.code }).toEqual({ body, status, code });
    }
    const malformed = await s.api("/api/v1/instant-trade/quote", { token: t, body: "{not json" });
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: "INVALID_JSON" } } });
    const huge = await s.api("/api/v1/instant-trade/quote", { token: t, body: JSON.stringify({ symbol: "x".repeat(20_000) }) });
    expect(huge).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    const [q] = await s.sql`SELECT count(*)::int AS n FROM quotes WHERE user_id = 'u-bad'`;
    expect(q!.n).toBe(0);
  });

  it("enforces the per-trade maximum and the per-user daily BRL limit", async () => {
    const t = s.token("u-limit");
    const big = await quote(t, { symbol: "ETH", network: "anvil", crypto_amount: "10" });
    expect(big).toMatchObject({ status: 422, body: { error: { code: "AMOUNT_TOO_LARGE" } } });
    const first = await quote(t, { symbol: "USDT", network: "anvil", crypto_amount: "500" });
    expect(first.status).toBe(200);
    expect((await create(t, first.body.quote_id, "lim-1")).status).toBe(201);
    const second = await quote(t, { symbol: "USDT", network: "anvil", crypto_amount: "500" });
    expect(second).toMatchObject({ status: 422, body: { error: { code: "DAILY_LIMIT_EXCEEDED", details: { remaining: "2387.75" } } } });
    // The refused quote was not stored: only the first one exists.
    const [n] = await s.sql`SELECT count(*)::int AS n FROM quotes WHERE user_id = 'u-limit'`;
    expect(n!.n).toBe(1);
  });
});

describe("creating trades", () => {
  it("creates a PENDING trade with a deposit address from the pool, once per Idempotency-Key", async () => {
    const t = s.token("u-create");
    const q = await quote(t);
    const a = await create(t, q.body.quote_id, "key-1");
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({ user_id: "u-create", status: "PENDING", symbol: "USDT", network: "anvil", crypto_amount: "100.5", fiat_amount: "525.06" });
    expect(a.body.deposit_address).toMatch(/^0x[0-9a-f]{40}$/);
    const [addr] = await s.sql`SELECT status, trade_id FROM deposit_addresses WHERE address = ${a.body.deposit_address}`;
    expect(addr).toMatchObject({ status: "ASSIGNED", trade_id: a.body.id });

    const again = await create(t, q.body.quote_id, "key-1");
    expect(again.status).toBeLessThan(300);
    expect(again.body.id).toBe(a.body.id);
    const other = await create(t, q.body.quote_id, "key-1", { refund_address: "0x0000000000000000000000000000000000000001" });
    expect(other).toMatchObject({ status: 409, body: { error: { code: "IDEMPOTENCY_KEY_REUSED" } } });
    const reuse = await create(t, q.body.quote_id, "key-2");
    expect(reuse).toMatchObject({ status: 409, body: { error: { code: "QUOTE_ALREADY_USED" } } });
    const [n] = await s.sql`SELECT count(*)::int AS n FROM instant_trades WHERE user_id = 'u-create'`;
    expect(n!.n).toBe(1);
  });

  it("concurrent creates with one key make one trade", async () => {
    const t = s.token("u-race");
    const q = await quote(t);
    const all = await Promise.all(Array.from({ length: 8 }, () => create(t, q.body.quote_id, "race-key")));
    expect(new Set(all.map((r) => r.body.id)).size).toBe(1);
    expect(all.every((r) => r.status < 300)).toBe(true);
  });

  it("refuses another user's quote (404), an expired quote (409), a bad refund address (400), a missing key (422)", async () => {
    const q = await quote(s.token("u-owner"));
    expect(await create(s.token("u-thief"), q.body.quote_id, "k")).toMatchObject({ status: 404, body: { error: { code: "QUOTE_NOT_FOUND" } } });
    await s.sql`UPDATE quotes SET expires_at = now() - interval '1 second' WHERE id = ${q.body.quote_id}`;
    expect(await create(s.token("u-owner"), q.body.quote_id, "k")).toMatchObject({ status: 409, body: { error: { code: "QUOTE_EXPIRED" } } });
    const q2 = await quote(s.token("u-owner"));
    const bad = await create(s.token("u-owner"), q2.body.quote_id, "k2", { refund_address: "0x1234" });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: "INVALID_ADDRESS" } } });
    // A valid address of another network is refused at creation too (LTC regtest: rltc1…).
    const ltc = await s.api("/api/v1/instant-trade/quote", { token: s.token("u-owner"), body: { symbol: "LTC", network: "litecoin-regtest", crypto_amount: "0.5" } });
    expect(ltc.status).toBe(200);
    for (const [i, other] of ["bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", refund].entries()) {
      const r = await create(s.token("u-owner"), ltc.body.quote_id, `k-ltc-${i}`, { refund_address: other });
      expect(r, other).toMatchObject({ status: 400, body: { error: { code: "INVALID_ADDRESS" } } });
    }
    const noKey = await s.api("/api/v1/instant-trade/create", { token: s.token("u-owner"), body: { quote_id: q2.body.quote_id, refund_address: refund } });
    expect(noKey.status).toBe(422);
    expect(await create(s.token("u-owner"), "qte_nope", "k3")).toMatchObject({ status: 400, body: { error: { code: "INVALID_ID" } } });
    const [n] = await s.sql`SELECT count(*)::int AS n FROM instant_trades WHERE user_id = 'u-owner'`;
    expect(n!.n).toBe(0);
  });

  it("answers 503 NO_DEPOSIT_ADDRESS when the network's pool is empty, and creates nothing", async () => {
    await s.sql`UPDATE deposit_addresses SET status = 'ASSIGNED' WHERE status = 'AVAILABLE' AND network = 'anvil'
                 AND address NOT IN (SELECT address FROM deposit_addresses WHERE status = 'AVAILABLE' ORDER BY derivation_index LIMIT 0)`;
    const t = s.token("u-empty");
    const q = await quote(t);
    const r = await create(t, q.body.quote_id, "k");
    expect(r).toMatchObject({ status: 503, body: { error: { code: "NO_DEPOSIT_ADDRESS" } } });
    const [n] = await s.sql`SELECT count(*)::int AS n FROM instant_trades WHERE user_id = 'u-empty'`;
    expect(n!.n).toBe(0);
    const m = await fetch(`http://127.0.0.1:${metricsPort(s)}/metrics`).then((x) => x.text());
    expect(m).toMatch(/ponte_coordinator_no_deposit_address_total\{[^}]*network="anvil"[^}]*\} 1/);
    await s.sql`UPDATE deposit_addresses SET status = 'AVAILABLE' WHERE trade_id IS NULL`;
  });
});

function metricsPort(stack: Stack): number {
  const line = stack.coordinator.lines.find((l) => l.includes("Coordinator ready"))!;
  return JSON.parse(line).metrics_port as number;
}

describe("reading, cancelling, admin actions", () => {
  it("a user sees only their own trades (another's → 404); malformed ids → 400", async () => {
    const trade = await newTrade("u-read");
    expect(await s.api(`/api/v1/instant-trade/${trade.id}`, { token: s.token("u-read") })).toMatchObject({ status: 200, body: { id: trade.id } });
    expect(await s.api(`/api/v1/instant-trade/${trade.id}`, { token: s.token("u-other") })).toMatchObject({ status: 404 });
    expect(await s.api(`/api/v1/instant-trade/${trade.id}`, { token: s.adminToken() })).toMatchObject({ status: 200 });
    expect(await s.api(`/api/v1/instant-trade/not-an-id`, { token: s.token("u-read") })).toMatchObject({ status: 400, body: { error: { code: "INVALID_ID" } } });
    expect(await s.api(`/api/v1/instant-trade/trd_00000000000000000000000000`, { token: s.token("u-read") })).toMatchObject({ status: 404 });
  });

  it("cancels a PENDING trade; after a deposit was detected cancel is 409 with the status", async () => {
    const a = await newTrade("u-cancel");
    const r = await s.api(`/api/v1/instant-trade/${a.id}/cancel`, { token: s.token("u-cancel"), method: "POST" });
    expect(r).toMatchObject({ status: 200, body: { status: "CANCELLED" } });
    const again = await s.api(`/api/v1/instant-trade/${a.id}/cancel`, { token: s.token("u-cancel"), method: "POST" });
    expect(again).toMatchObject({ status: 409, body: { error: { code: "INVALID_STATE", details: { status: "CANCELLED" } } } });

    const b = await newTrade("u-cancel");
    await s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED' WHERE id = ${b.id}`;
    const late = await s.api(`/api/v1/instant-trade/${b.id}/cancel`, { token: s.token("u-cancel"), method: "POST" });
    expect(late).toMatchObject({ status: 409, body: { error: { code: "INVALID_STATE", details: { status: "DEPOSIT_DETECTED" } } } });
    expect(await s.api(`/api/v1/instant-trade/${b.id}/cancel`, { token: s.token("u-x"), method: "POST" })).toMatchObject({ status: 404 });
  });

  it("pages through my trades with a cursor, newest first", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await newTrade("u-page")).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const qs: string = `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const r = await s.api(`/api/v1/instant-trade/history/my-trades${qs}`, { token: s.token("u-page") });
      expect(r.status).toBe(200);
      expect(r.body.trades.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.trades.map((t: any) => t.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const bad = await s.api(`/api/v1/instant-trade/history/my-trades?cursor=zzz`, { token: s.token("u-page") });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
  });

  it("admin confirm-payment needs the admin role and a reason, and shows in the audit log", async () => {
    const t = await newTrade("u-admin");
    await s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED' WHERE id = ${t.id}`;
    const path = `/api/v1/instant-trade/${t.id}/confirm-payment`;
    expect(await s.api(path, { token: s.token("u-admin"), body: { reason: "looks fine" } })).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN" } } });
    expect((await s.api(path, { token: s.adminToken(), body: {} })).status).toBe(422);
    expect(await s.api(path, { token: s.adminToken("ops-7"), body: { reason: "deposit checked by hand" } })).toMatchObject({ status: 200, body: { status: "PAYMENT_CONFIRMED" } });
    const complete = await s.api(`/api/v1/instant-trade/${t.id}/complete`, { token: s.adminToken(), body: { reason: "paid" } });
    expect(complete).toMatchObject({ status: 409, body: { error: { code: "INVALID_STATE" } } });
    const log = await s.api(`/api/v1/instant-trade/${t.id}/audit-log`, { token: s.token("u-admin") });
    expect(log.status).toBe(200);
    expect(log.body.entries.map((e: any) => [e.from_status, e.to_status, e.actor])).toEqual([
      [null, "PENDING", "user:u-admin"],
      ["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "admin:ops-7"],
    ]);
    expect(log.body.entries[1].reason).toBe("deposit checked by hand");
    expect((await s.api(`/api/v1/instant-trade/${t.id}/audit-log`, { token: s.token("u-zz") })).status).toBe(404);
  });

  it("expires a PENDING trade after its deadline", async () => {
    const t = await newTrade("u-expire");
    await s.sql`UPDATE instant_trades SET expires_at = now() - interval '1 second' WHERE id = ${t.id}`;
    await eventually(async () => {
      const r = await s.api(`/api/v1/instant-trade/${t.id}`, { token: s.token("u-expire") });
      expect(r.body.status).toBe("EXPIRED");
    });
  });
});

describe("PIX key", () => {
  it("stores a valid key and reads it back; refuses bad formats and another holder's document", async () => {
    const t = s.token("u-pix", { document: "52998224725" });
    expect(await s.api("/api/v1/users/me/pix-key", { token: t })).toMatchObject({ status: 404 });
    const good = { key_type: "email", key: "maria@example.com", holder_document: "529.982.247-25", holder_name: "Maria Silva" };
    expect(await s.api("/api/v1/users/me/pix-key", { token: t, method: "PUT", body: good })).toMatchObject({ status: 200 });
    expect(await s.api("/api/v1/users/me/pix-key", { token: t })).toMatchObject({
      status: 200,
      body: { key_type: "email", key: "maria@example.com", holder_document: "52998224725", holder_name: "Maria Silva" },
    });
    const bads: Record<string, unknown>[] = [
      { ...good, key_type: "cpf", key: "12345678900" },
      { ...good, key_type: "phone", key: "11987654321" },
      { ...good, key_type: "email", key: "Maria@Example.com" },
      { ...good, key_type: "evp", key: "not-a-uuid" },
      { ...good, key_type: "bitcoin" },
      { ...good, holder_document: "11111111111" },
    ];
    for (const b of bads) {
      const r = await s.api("/api/v1/users/me/pix-key", { token: t, method: "PUT", body: b });
      expect({ b, status: r.status }).toEqual({ b, status: 422 });
    }
    const other = await s.api("/api/v1/users/me/pix-key", { token: t, method: "PUT", body: { ...good, holder_document: "11.222.333/0001-81" } });
    expect(other).toMatchObject({ status: 422, body: { error: { code: "HOLDER_DOCUMENT_MISMATCH" } } });
    expect(await s.api("/api/v1/users/me/pix-key", { token: t })).toMatchObject({ body: { key: "maria@example.com" } });
  });
});

describe("auth", () => {
  it("401 without, with an expired, or with a forged token", async () => {
    const path = "/api/v1/instant-trade/history/my-trades";
    expect((await s.api(path)).status).toBe(401);
    expect((await s.api(path, { token: "abc.def.ghi" })).status).toBe(401);
    const forged = s.token("u-1").slice(0, -4) + "AAAA";
    expect((await s.api(path, { token: forged })).status).toBe(401);
  });
});

describe("health", () => {
  it("serves openapi.json, healthz, readyz and metrics", async () => {
    const doc = await s.api("/openapi.json");
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(["/api/v1/instant-trade/quote", "/api/v1/users/me/pix-key"]));
    expect((await s.api("/healthz")).status).toBe(200);
    expect((await s.api("/readyz")).status).toBe(200);
    const metrics = await fetch(`${s.gatewayUrl}/metrics`).then((r) => r.text());
    expect(metrics).toContain("ponte_gateway_");
  });
});
