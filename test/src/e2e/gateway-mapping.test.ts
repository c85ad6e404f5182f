import { ErrorCodes, isErrorCode } from "@ponte/common";
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evmAddresses, startStack, stockAddressPool, type Stack } from "../harness/stack.js";

// The gateway's half of the contract with the real coordinator: what it sends (seen in the rows
// the coordinator writes, and in the metadata grpc-js traces on the coordinator's side), how it
// renders what comes back (compared field by field with the database), and that the
// coordinator's errors reach the client as they were raised. trade-api.test.ts covers the routes'
// behaviour; this file covers the mapping.

let s: Stack;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const API = "/api/v1/instant-trade";

beforeAll(async () => {
  s = await startStack({
    env: {
      // No SOL price: the asset list must then say price null.
      STATIC_PRICES: JSON.stringify({ ETH: "15000.00", USDT: "5.40", LTC: "400.00" }),
      // grpc-js logs the metadata of every call the coordinator receives (request-id forwarding).
      GRPC_TRACE: "server_call",
      GRPC_VERBOSITY: "DEBUG",
    },
  });
  await stockAddressPool(s, "anvil", evmAddresses(60));
});
afterAll(async () => {
  await s?.stop();
});

// ---- the frontend's formats, written here independently of the gateway's mapping code

/** Base units → a human decimal without trailing zeros. */
function units(base: bigint | string | number, decimals: number): string {
  const digits = BigInt(base).toString().padStart(decimals + 1, "0");
  const int = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return frac ? `${int}.${frac}` : int;
}
/** Centavos → BRL with exactly two places. */
const brl = (centavos: bigint | string | number): string => {
  const c = BigInt(centavos);
  return `${c / 100n}.${(c % 100n).toString().padStart(2, "0")}`;
};
/** A numeric column's text without trailing zeros ("5.400000000000000000" → "5.4"). */
const trimmed = (n: string): string => (n.includes(".") ? n.replace(/0+$/, "").replace(/\.$/, "") : n);
const iso = (d: Date): string => d.toISOString();

const user = (prefix: string) => `${prefix}-${randomBytes(3).toString("hex")}`;

async function quote(token: string, body: Record<string, unknown> = { symbol: "USDT", network: "anvil", crypto_amount: "100.5" }) {
  const r = await s.api(`${API}/quote`, { token, body });
  expect(r.status).toBe(200);
  return r.body;
}
async function newTrade(sub: string, cryptoAmount = "100.5") {
  const q = await quote(s.token(sub), { symbol: "USDT", network: "anvil", crypto_amount: cryptoAmount });
  const c = await s.api(`${API}/create`, {
    token: s.token(sub),
    body: { quote_id: q.quote_id, refund_address: refund },
    headers: { "idempotency-key": `k-${q.quote_id}` },
  });
  expect(c.status).toBe(201);
  return c.body;
}

/** The trade as the frontend must see it, built from the coordinator's rows. */
async function tradeFromDb(id: string) {
  const [t] = await s.sql`SELECT * FROM instant_trades WHERE id = ${id}`;
  const [p] = await s.sql`SELECT amount_centavos, status, end_to_end_id FROM payouts WHERE trade_id = ${id} ORDER BY created_at DESC LIMIT 1`;
  return {
    id: t!.id,
    user_id: t!.user_id,
    quote_id: t!.quote_id,
    status: t!.status,
    symbol: t!.symbol,
    network: t!.network,
    crypto_amount: units(t!.crypto_amount, t!.decimals),
    fiat_amount: brl(t!.fiat_amount_centavos),
    price: trimmed(t!.price),
    deposit_address: t!.deposit_address,
    refund_address: t!.refund_address,
    expires_at: iso(t!.expires_at),
    monitoring_until: iso(t!.monitoring_until),
    created_at: iso(t!.created_at),
    updated_at: iso(t!.updated_at),
    version: Number(t!.version),
    received_amount: units(t!.received_amount, t!.decimals),
    confirmed_amount: units(t!.confirmed_amount, t!.decimals),
    payout_amount: p ? brl(p.amount_centavos) : null,
    payout_status: p ? p.status : null,
    payout_end_to_end_id: p?.end_to_end_id ?? null,
    source: t!.source,
  };
}

async function auditFromDb(id: string) {
  const rows = await s.sql`SELECT * FROM instant_trade_history WHERE trade_id = ${id} ORDER BY id`;
  return {
    trade_id: id,
    entries: rows.map((e) => ({
      id: Number(e.id),
      from_status: e.from_status,
      to_status: e.to_status,
      actor: e.actor,
      reason: e.reason === "" ? null : e.reason,
      created_at: iso(e.created_at),
      version: Number(e.version),
      data: e.data,
    })),
    transfers: [], // no agent runs here, so no sweep or refund is ever ordered
  };
}

describe("proto → JSON, against the coordinator's rows", () => {
  it("assets: human amounts, percentages, null contract for a native coin, null price when there is none", async () => {
    const r = await s.api(`${API}/assets`);
    expect(r.status).toBe(200);
    const byKey = (a: { network: string; symbol: string }) => `${a.network}:${a.symbol}`;
    const common = { enabled: true, spread_percent: "3", network_fee_percent: "0.25" };
    expect([...r.body.assets].sort((a, b) => byKey(a).localeCompare(byKey(b)))).toEqual([
      { symbol: "ETH", network: "anvil", name: "Ether", decimals: 18, contract: null, min_amount: "0.0001", max_amount: "1000", confirmations: 2, price: "15000", ...common },
      { symbol: "USDT", network: "anvil", name: "Tether USD (demo)", decimals: 6, contract: "0x0000000000000000000000000000000000000001", min_amount: "1", max_amount: "100000", confirmations: 2, price: "5.4", ...common },
      { symbol: "LTC", network: "litecoin-regtest", name: "Litecoin", decimals: 8, contract: null, min_amount: "0.001", max_amount: "1000", confirmations: 6, price: "400", ...common },
      { symbol: "SOL", network: "solana-local", name: "Solana", decimals: 9, contract: null, min_amount: "0.001", max_amount: "1000", confirmations: 1, price: null, ...common },
    ]);
  });

  it("quote: every field is the stored quote's, BRL with two places; the caller is the token's sub", async () => {
    const sub = user("u-quote");
    const q = await quote(s.token(sub), { symbol: "ETH", network: "anvil", crypto_amount: "0.0123" });
    const [row] = await s.sql`SELECT * FROM quotes WHERE id = ${q.quote_id}`;
    expect(row).toMatchObject({ user_id: sub, symbol: "ETH", network: "anvil", crypto_amount: "12300000000000000" });
    expect(q).toEqual({
      quote_id: row!.id,
      symbol: "ETH",
      network: "anvil",
      crypto_amount: "0.0123",
      fiat_amount: brl(row!.fiat_amount_centavos),
      price: "15000",
      spread: brl(row!.spread_centavos),
      network_fee: brl(row!.network_fee_centavos),
      spread_percent: "3",
      network_fee_percent: "0.25",
      expires_at: iso(row!.expires_at),
      created_at: iso(row!.created_at),
    });
    // 0.0123 × 15000 = 184.50 BRL: spread 5.535 and fee 0.46125, so the two places are real.
    expect([q.fiat_amount, q.spread, q.network_fee]).toEqual(["178.50", "5.53", "0.46"]);
  });

  it("trade: create, get and history answer the same JSON, field for field the stored trade (no payout: nulls)", async () => {
    const sub = user("u-trade");
    const created = await newTrade(sub);
    const expected = await tradeFromDb(created.id);
    expect(expected).toMatchObject({ user_id: sub, status: "PENDING", version: 1, payout_amount: null, payout_status: null, payout_end_to_end_id: null });
    expect(created).toEqual(expected);
    expect((await s.api(`${API}/${created.id}`, { token: s.token(sub) })).body).toEqual(expected);
    expect((await s.api(`${API}/history/my-trades`, { token: s.token(sub) })).body).toEqual({ trades: [expected], next_cursor: null });
  });

  it("trade: received, confirmed and payout amounts, the payout's status and end-to-end id", async () => {
    const sub = user("u-paid");
    const settled = await newTrade(sub);
    const inFlight = await newTrade(sub, "1");
    await s.sql`UPDATE instant_trades SET status = 'COMPLETED', received_amount = 100500001, confirmed_amount = 100500000, version = 7
                 WHERE id = ${settled.id}`;
    await s.sql`UPDATE instant_trades SET status = 'PAYOUT_PENDING', received_amount = 1000000, confirmed_amount = 1000000, version = 4
                 WHERE id = ${inFlight.id}`;
    const payout = (tradeId: string, status: string, cents: number, e2e: string | null) => s.sql`
      INSERT INTO payouts (id, trade_id, idempotency_key, provider, status, amount_centavos, key_type, pix_key, holder_document, holder_name, end_to_end_id, user_id)
      VALUES (${`pay_${randomBytes(6).toString("hex")}`}, ${tradeId}, ${`pk-${randomBytes(6).toString("hex")}`}, 'starkbank', ${status}, ${cents},
              'email', 'maria@example.com', '52998224725', 'Maria Silva', ${e2e}, ${sub})`;
    await payout(settled.id, "SETTLED", 52506, "E00000000202601011200abcdef012345");
    await payout(inFlight.id, "PROCESSING", 522, null);

    const a = await s.api(`${API}/${settled.id}`, { token: s.token(sub) });
    expect(a.body).toEqual(await tradeFromDb(settled.id));
    expect(a.body).toMatchObject({
      status: "COMPLETED",
      version: 7,
      received_amount: "100.500001",
      confirmed_amount: "100.5",
      payout_amount: "525.06",
      payout_status: "SETTLED",
      payout_end_to_end_id: "E00000000202601011200abcdef012345",
    });
    const b = await s.api(`${API}/${inFlight.id}`, { token: s.token(sub) });
    expect(b.body).toMatchObject({ status: "PAYOUT_PENDING", payout_amount: "5.22", payout_status: "PROCESSING", payout_end_to_end_id: null });
    // The same mapping on every route that answers a trade.
    const page = await s.api(`${API}/history/my-trades`, { token: s.token(sub) });
    expect(page.body.trades).toEqual([b.body, a.body]);
  });

  it("audit log: every stored transition, null for an empty from_status and reason", async () => {
    const sub = user("u-audit");
    const t = await newTrade(sub);
    expect((await s.api(`${API}/${t.id}/cancel`, { token: s.token(sub), body: { reason: "changed my mind" } })).status).toBe(200);
    // An entry as a worker writes them: no reason, some data.
    await s.sql`INSERT INTO instant_trade_history (trade_id, version, from_status, to_status, actor, reason, data)
                VALUES (${t.id}, 3, 'CANCELLED', 'REFUND_PENDING', 'system', '', ${s.sql.json({ refund_tx: "0xabc", amount: "10" })})`;
    const log = await s.api(`${API}/${t.id}/audit-log`, { token: s.token(sub) });
    expect(log.status).toBe(200);
    expect(log.body).toEqual(await auditFromDb(t.id));
    expect(log.body.entries.map((e: any) => [e.from_status, e.to_status, e.actor, e.reason, e.version, e.data])).toEqual([
      [null, "PENDING", `user:${sub}`, "created", 1, expect.any(Object)],
      ["PENDING", "CANCELLED", `user:${sub}`, "changed my mind", 2, expect.any(Object)],
      ["CANCELLED", "REFUND_PENDING", "system", null, 3, { refund_tx: "0xabc", amount: "10" }],
    ]);
  });

  it("pix key: the key and documents as normalised by the gateway are what is stored, and answered in full", async () => {
    const sub = user("u-pix");
    const token = s.token(sub, { document: "529.982.247-25" });
    const put = await s.api("/api/v1/users/me/pix-key", {
      token,
      method: "PUT",
      body: { key_type: "cpf", key: "529.982.247-25", holder_document: "529.982.247-25", holder_name: "Maria da Silva" },
    });
    expect(put.status).toBe(200);
    const [row] = await s.sql`SELECT * FROM user_bank_data WHERE user_id = ${sub}`;
    expect(row).toMatchObject({ key_type: "cpf", pix_key: "52998224725", holder_document: "52998224725", holder_name: "Maria da Silva" });
    const expected = { user_id: sub, key_type: "cpf", key: "52998224725", holder_document: "52998224725", holder_name: "Maria da Silva", updated_at: iso(row!.updated_at) };
    expect(put.body).toEqual(expected);
    expect((await s.api("/api/v1/users/me/pix-key", { token })).body).toEqual(expected);
  });
});

describe("what the gateway sends", () => {
  it("create: the Idempotency-Key and sha256 of the body's canonical JSON; a replay with reordered keys is the same trade", async () => {
    const sub = user("u-idem");
    const q = await quote(s.token(sub));
    const body = { quote_id: q.quote_id, refund_address: refund };
    const first = await s.api(`${API}/create`, { token: s.token(sub), body, headers: { "idempotency-key": "order:42.a_b-c" } });
    expect(first.status).toBe(201);
    const [key] = await s.sql`SELECT * FROM idempotency_keys WHERE user_id = ${sub}`;
    // Keys sorted, no whitespace: {"quote_id":…,"refund_address":…}
    const hash = createHash("sha256").update(JSON.stringify({ quote_id: q.quote_id, refund_address: refund })).digest("hex");
    expect(key).toMatchObject({ key: "order:42.a_b-c", request_hash: hash, trade_id: first.body.id });

    const reordered = `{ "refund_address" : "${refund}",\n  "quote_id": "${q.quote_id}" }`;
    const replay = await s.api(`${API}/create`, { token: s.token(sub), body: reordered, headers: { "idempotency-key": "order:42.a_b-c" } });
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    const [n] = await s.sql`SELECT count(*)::int AS n FROM instant_trades WHERE user_id = ${sub}`;
    expect(n!.n).toBe(1);
  });

  it("history: 20 a page by default, the cursor, and the status filter", async () => {
    const sub = user("u-page");
    const ids: string[] = [];
    for (let i = 0; i < 21; i++) ids.push((await newTrade(sub, "1")).id);
    await s.sql`UPDATE instant_trades SET status = 'CANCELLED' WHERE id = ${ids[3]!}`;
    const first = await s.api(`${API}/history/my-trades`, { token: s.token(sub) });
    expect(first.body.trades.map((t: any) => t.id)).toEqual([...ids].reverse().slice(0, 20));
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const rest = await s.api(`${API}/history/my-trades?cursor=${encodeURIComponent(first.body.next_cursor)}`, { token: s.token(sub) });
    expect(rest.body).toMatchObject({ trades: [{ id: ids[0] }], next_cursor: null });
    const cancelled = await s.api(`${API}/history/my-trades?status=CANCELLED&limit=5`, { token: s.token(sub) });
    expect(cancelled.body).toMatchObject({ trades: [{ id: ids[3], status: "CANCELLED" }], next_cursor: null });
  });

  it("cancel: a user cancels as themselves; an admin cancels anyone's trade as the admin", async () => {
    const sub = user("u-cxl");
    const t = await newTrade(sub);
    const byAdmin = await s.api(`${API}/${t.id}/cancel`, { token: s.adminToken("ops-1"), body: { reason: "customer called" } });
    expect(byAdmin).toMatchObject({ status: 200, body: { id: t.id, user_id: sub, status: "CANCELLED" } });
    const [h] = await s.sql`SELECT actor, reason FROM instant_trade_history WHERE trade_id = ${t.id} AND to_status = 'CANCELLED'`;
    expect(h).toEqual({ actor: "admin:ops-1", reason: "customer called" });
  });

  it("admin actions: the admin as actor, the reason trimmed; complete from MANUAL_REVIEW", async () => {
    const sub = user("u-adm");
    const t = await newTrade(sub);
    await s.sql`UPDATE instant_trades SET status = 'DEPOSIT_DETECTED' WHERE id = ${t.id}`;
    const confirm = await s.api(`${API}/${t.id}/confirm-payment`, { token: s.adminToken("ops-2"), body: { reason: "  seen on chain  " } });
    expect(confirm).toMatchObject({ status: 200, body: { status: "PAYMENT_CONFIRMED" } });
    await s.sql`UPDATE instant_trades SET status = 'MANUAL_REVIEW' WHERE id = ${t.id}`;
    const complete = await s.api(`${API}/${t.id}/complete`, { token: s.adminToken("ops-3"), body: { reason: "paid by hand" } });
    expect(complete).toMatchObject({ status: 200, body: { status: "COMPLETED" } });
    expect(complete.body).toEqual(await tradeFromDb(t.id));
    const rows = await s.sql`SELECT from_status, to_status, actor, reason FROM instant_trade_history WHERE trade_id = ${t.id} ORDER BY id`;
    expect(rows.slice(1)).toEqual([
      { from_status: "DEPOSIT_DETECTED", to_status: "PAYMENT_CONFIRMED", actor: "admin:ops-2", reason: "seen on chain" },
      { from_status: "MANUAL_REVIEW", to_status: "COMPLETED", actor: "admin:ops-3", reason: "paid by hand" },
    ]);
  });

  it("forwards the request id (the caller's, or the one it made up) in the call's metadata", async () => {
    const sub = user("u-rid");
    const t = await newTrade(sub);
    const mine = `e2e-${randomBytes(6).toString("hex")}`;
    const res = await fetch(`${s.gatewayUrl}${API}/${t.id}`, { headers: { authorization: `Bearer ${s.token(sub)}`, "x-request-id": mine } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(mine);
    const made = await fetch(`${s.gatewayUrl}${API}/${t.id}/audit-log`, { headers: { authorization: `Bearer ${s.token(sub)}` } });
    const madeUp = made.headers.get("x-request-id");
    expect(madeUp).toMatch(/^[0-9a-f-]{36}$/);
    const received = (method: string, id: string) =>
      s.coordinator.lines.some((l) => l.includes(`/ponte.coordinator.v1.TradeService/${method} received headers`) && l.includes(`"x-request-id":["${id}"]`));
    await expect.poll(() => received("GetTrade", mine)).toBe(true);
    await expect.poll(() => received("GetAuditLog", madeUp!)).toBe(true);
  });
});

describe("the coordinator's errors reach the client as raised", () => {
  it("code, message and details unchanged, the status the code's", async () => {
    const owner = user("u-err");
    const t = await newTrade(owner);
    const q = await quote(s.token(owner));
    const other = s.token(user("u-err-other"));
    const cases: [Promise<{ status: number; body: any }>, { code: string; message: string; details: Record<string, unknown> }][] = [
      [s.api(`${API}/${t.id}`, { token: other }), { code: "TRADE_NOT_FOUND", message: "Trade not found", details: { trade_id: t.id } }],
      [
        s.api(`${API}/create`, { token: other, body: { quote_id: q.quote_id, refund_address: refund }, headers: { "idempotency-key": "k" } }),
        { code: "QUOTE_NOT_FOUND", message: "Quote not found", details: { quote_id: q.quote_id } },
      ],
      [s.api("/api/v1/users/me/pix-key", { token: other }), { code: "PIX_KEY_NOT_FOUND", message: "No PIX key registered yet", details: {} }],
      [
        s.api(`${API}/quote`, { token: other, body: { symbol: "DOGE", network: "anvil", crypto_amount: "1" } }),
        { code: "ASSET_NOT_FOUND", message: "Unknown asset DOGE on anvil", details: { symbol: "DOGE", network: "anvil" } },
      ],
      [
        s.api(`${API}/${t.id}/complete`, { token: s.adminToken("ops-9"), body: { reason: "too early" } }),
        { code: "INVALID_STATE", message: "A trade in PENDING cannot move to COMPLETED", details: { trade_id: t.id, status: "PENDING", to: "COMPLETED", actor: "admin" } },
      ],
    ];
    for (const [call, error] of cases) {
      const r = await call;
      expect(isErrorCode(error.code)).toBe(true);
      expect({ status: r.status, body: r.body }).toEqual({ status: ErrorCodes[error.code as keyof typeof ErrorCodes], body: { error } });
    }
  });

  it("webhook: no token needed; the coordinator's NOT_FOUND for a provider it does not run is a 404", async () => {
    // This stack runs with PIX_PROVIDER=none. (The signed path: the lead's webhook e2e.)
    const r = await s.api("/api/v1/webhooks/pix/starkbank", { body: '{"event":{"id":"evt-1"}}', headers: { "digital-signature": "x" } });
    expect(r).toEqual({ status: 404, body: { error: { code: "NOT_FOUND", message: "Unknown PIX provider", details: { provider: "starkbank" } } } });
    await expect.poll(() => s.coordinator.lines.some((l) => l.includes("/ponte.coordinator.v1.TradeService/IngestPixWebhook received headers"))).toBe(true);
  });
});
