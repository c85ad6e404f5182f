import { PonteError } from "@ponte/common";
import { tradev1 } from "@ponte/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp, errorOf, send, type TestApp } from "../_test/app.js";
import {
  QUOTE_ID,
  TRADE_ID,
  sampleAsset,
  sampleQuote,
  sampleTrade,
  startFakeCoordinator,
  type FakeCoordinator,
  type FakeImpl,
} from "../_test/fake-coordinator.js";
import { requestHash } from "../idempotency.js";
import { signToken } from "../testing/index.js";

// The gateway's half of the contract, over a real gRPC socket: what it sends, how it renders
// what comes back, and how the coordinator's errors reach the client.

const API = "/api/v1/instant-trade";
const impl: Partial<FakeImpl> = {};
let fake: FakeCoordinator;
let t: TestApp;

beforeAll(async () => {
  // The fake dispatches to whatever the test put in `impl`, so one server serves every test.
  const dispatch = Object.fromEntries(
    (Object.keys(tradev1.TradeServiceService) as (keyof FakeImpl)[]).map((m) => [
      m,
      (req: unknown) => {
        const fn = impl[m] as ((r: unknown) => Promise<unknown>) | undefined;
        return fn ? fn(req) : Promise.reject(new PonteError("INTERNAL", `${m} not faked`));
      },
    ]),
  ) as unknown as FakeImpl;
  fake = await startFakeCoordinator(dispatch);
  t = buildApp(fake.url, { COORDINATOR_DEADLINE_MS: "300" });
});
afterAll(async () => {
  t.close();
  await fake.close();
});
afterEach(() => {
  for (const k of Object.keys(impl)) delete impl[k as keyof FakeImpl];
  fake.calls.length = 0;
});

const user = async (document?: string) => ({
  authorization: `Bearer ${await signToken({ sub: "user-1", ...(document ? { document } : {}) })}`,
});
const admin = async () => ({ authorization: `Bearer ${await signToken({ sub: "admin-1", role: "admin" })}` });

const TRADE_JSON = {
  id: TRADE_ID,
  user_id: "user-1",
  quote_id: QUOTE_ID,
  status: "PENDING",
  symbol: "USDT",
  network: "polygon",
  crypto_amount: "100.5",
  fiat_amount: "543.21",
  price: "5.6",
  deposit_address: "0x00000000000000000000000000000000000000d1",
  refund_address: "0x00000000000000000000000000000000000000e1",
  expires_at: "2026-01-01T00:15:00.000Z",
  monitoring_until: "2026-01-02T00:00:00.000Z",
  created_at: "2026-01-01T00:00:00.000Z",
  updated_at: "2026-01-01T00:00:00.000Z",
  version: 1,
  received_amount: "0",
  confirmed_amount: "0",
  payout_amount: null,
};

describe("mapping", () => {
  it("assets: human amounts, percentages, null contract and price", async () => {
    impl.listAssets = async () => ({
      assets: [sampleAsset(), sampleAsset({ symbol: "BTC", network: "bitcoin", name: "Bitcoin", decimals: 8, contract: "", minAmount: "10000", maxAmount: "100000000", price: "", spreadBps: "250", networkFeeBps: "0" })],
    });
    const res = await t.app.request(`${API}/assets`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      assets: [
        {
          symbol: "USDT", network: "polygon", name: "Tether USD", decimals: 6, contract: "0xc2132D05D31c914a87C6611C10748AEb04B58e8F",
          min_amount: "10", max_amount: "50000", confirmations: 128, enabled: true, spread_percent: "3", network_fee_percent: "0.25", price: "5.61",
        },
        {
          symbol: "BTC", network: "bitcoin", name: "Bitcoin", decimals: 8, contract: null,
          min_amount: "0.0001", max_amount: "1", confirmations: 128, enabled: true, spread_percent: "2.5", network_fee_percent: "0", price: null,
        },
      ],
    });
  });

  it("quote: sends the caller and the amount kind, renders BRL with two places", async () => {
    impl.createQuote = async () => sampleQuote();
    const res = await send(t.app, "POST", `${API}/quote`, { headers: await user(), body: { symbol: "USDT", network: "polygon", crypto_amount: "100.5" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      quote_id: QUOTE_ID, symbol: "USDT", network: "polygon", crypto_amount: "100.5", fiat_amount: "543.21", price: "5.6",
      spread: "16.88", network_fee: "1.40", spread_percent: "3", network_fee_percent: "0.25",
      expires_at: "2026-01-01T00:01:00.000Z", created_at: "2026-01-01T00:00:00.000Z",
    });
    expect(fake.calls[0]?.request).toEqual({ userId: "user-1", symbol: "USDT", network: "polygon", amount: { $case: "cryptoAmount", value: "100.5" } });

    await send(t.app, "POST", `${API}/quote`, { headers: await user(), body: { symbol: "USDT", network: "polygon", fiat_amount: "500" } });
    expect(fake.calls[1]?.request).toMatchObject({ amount: { $case: "fiatAmount", value: "500" } });
  });

  it("create: 201 with the trade; passes the key, the body hash and the request id", async () => {
    impl.createTrade = async () => sampleTrade();
    const body = { refund_address: "0x00000000000000000000000000000000000000e1", quote_id: QUOTE_ID };
    const res = await send(t.app, "POST", `${API}/create`, {
      headers: { ...(await user()), "idempotency-key": "order:42", "x-request-id": "req-1" },
      body,
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual(TRADE_JSON);
    expect(fake.calls[0]).toEqual({
      method: "createTrade",
      requestId: "req-1",
      request: { userId: "user-1", quoteId: QUOTE_ID, refundAddress: body.refund_address, idempotencyKey: "order:42", requestHash: requestHash(body) },
    });
  });

  it("get: a user reads as themselves, an admin reads any trade", async () => {
    impl.getTrade = async () => sampleTrade({ status: "COMPLETED", receivedAmount: "100500000", confirmedAmount: "100500000", payoutAmountCentavos: "54321", version: 7n });
    const res = await t.app.request(`${API}/${TRADE_ID}`, { headers: await user() });
    expect(await res.json()).toMatchObject({ status: "COMPLETED", received_amount: "100.5", confirmed_amount: "100.5", payout_amount: "543.21", version: 7 });
    await t.app.request(`${API}/${TRADE_ID}`, { headers: await admin() });
    expect(fake.calls.map((c) => c.request)).toEqual([{ tradeId: TRADE_ID, userId: "user-1" }, { tradeId: TRADE_ID, userId: "" }]);
  });

  it("cancel: the caller, their role and the reason", async () => {
    impl.cancelTrade = async () => sampleTrade({ status: "CANCELLED" });
    const res = await send(t.app, "POST", `${API}/${TRADE_ID}/cancel`, { headers: await user(), body: { reason: "changed my mind" } });
    expect(res.status).toBe(200);
    expect(fake.calls[0]?.request).toEqual({ tradeId: TRADE_ID, userId: "user-1", actorRole: "user", reason: "changed my mind" });
  });

  it("history: the caller's page, default size, null cursor on the last page", async () => {
    impl.listTrades = async () => ({ trades: [sampleTrade()], nextCursor: "" });
    const res = await t.app.request(`${API}/history/my-trades`, { headers: await admin() });
    expect(await res.json()).toEqual({ trades: [TRADE_JSON], next_cursor: null });
    expect(fake.calls[0]?.request).toEqual({ userId: "admin-1", limit: 20, cursor: "", status: "" });
  });

  it("admin actions: the admin as actor, with the reason", async () => {
    impl.adminConfirmPayment = async () => sampleTrade({ status: "PAYMENT_CONFIRMED" });
    impl.adminComplete = async () => sampleTrade({ status: "COMPLETED" });
    const a = await send(t.app, "POST", `${API}/${TRADE_ID}/confirm-payment`, { headers: await admin(), body: { reason: " seen on chain " } });
    const b = await send(t.app, "POST", `${API}/${TRADE_ID}/complete`, { headers: await admin(), body: { reason: "paid by hand" } });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(fake.calls.map((c) => [c.method, c.request])).toEqual([
      ["adminConfirmPayment", { tradeId: TRADE_ID, adminId: "admin-1", reason: "seen on chain" }],
      ["adminComplete", { tradeId: TRADE_ID, adminId: "admin-1", reason: "paid by hand" }],
    ]);
  });

  it("audit log: entries with null for the empty from_status and reason", async () => {
    impl.getAuditLog = async (): Promise<tradev1.AuditLog> => ({
      tradeId: TRADE_ID,
      entries: [
        { id: 1n, fromStatus: "", toStatus: "PENDING", actor: "user:user-1", reason: "", createdAt: "t0", version: 1n, data: {} },
        { id: 2n, fromStatus: "PENDING", toStatus: "CANCELLED", actor: "user:user-1", reason: "changed my mind", createdAt: "t1", version: 2n, data: { k: "v" } },
      ],
    });
    const res = await t.app.request(`${API}/${TRADE_ID}/audit-log`, { headers: await user() });
    expect(await res.json()).toEqual({
      trade_id: TRADE_ID,
      entries: [
        { id: 1, from_status: null, to_status: "PENDING", actor: "user:user-1", reason: null, created_at: "t0", version: 1, data: {} },
        { id: 2, from_status: "PENDING", to_status: "CANCELLED", actor: "user:user-1", reason: "changed my mind", created_at: "t1", version: 2, data: { k: "v" } },
      ],
    });
  });

  it("pix key: sends the normalised key and documents with the token's document; answers the key in full", async () => {
    impl.putPixKey = async (r) => ({ userId: r.userId, keyType: r.keyType, key: r.key, holderDocument: r.holderDocument, holderName: r.holderName, updatedAt: "t" });
    const res = await send(t.app, "PUT", "/api/v1/users/me/pix-key", {
      headers: await user("529.982.247-25"),
      body: { key_type: "cpf", key: "529.982.247-25", holder_document: "52998224725", holder_name: "Maria da Silva" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user_id: "user-1", key_type: "cpf", key: "52998224725", holder_document: "52998224725", holder_name: "Maria da Silva", updated_at: "t" });
    expect(fake.calls[0]?.request).toEqual({
      userId: "user-1", keyType: "cpf", key: "52998224725", holderDocument: "52998224725", holderName: "Maria da Silva", identityDocument: "52998224725",
    });
  });
});

describe("the coordinator's errors reach the client with their code", () => {
  const cases: [string, PonteError, number][] = [
    ["another user's trade", new PonteError("TRADE_NOT_FOUND", "trade not found", { trade_id: TRADE_ID }), 404],
    ["an expired quote", new PonteError("QUOTE_EXPIRED", "the quote has expired"), 409],
    ["a state conflict", new PonteError("INVALID_STATE", "cannot cancel", { status: "DEPOSIT_DETECTED" }), 409],
    ["an empty address pool", new PonteError("NO_DEPOSIT_ADDRESS", "no deposit address available", { network: "polygon" }), 503],
    ["a bad amount", new PonteError("INVALID_AMOUNT", "too many decimals", { field: "crypto_amount", decimals: 6 }), 422],
  ];
  it.each(cases)("%s", async (_, err, status) => {
    impl.getTrade = async () => {
      throw err;
    };
    const res = await t.app.request(`${API}/${TRADE_ID}`, { headers: await user() });
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ error: { code: err.code, message: err.message, details: err.details } });
  });

  it("an unexpected coordinator failure is a bare 500 INTERNAL", async () => {
    impl.getTrade = async () => {
      throw new Error("connection to database lost: password=hunter2");
    };
    const res = await t.app.request(`${API}/${TRADE_ID}`, { headers: await user() });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "INTERNAL", message: "internal error", details: {} } });
  });

  it("a coordinator slower than the deadline is 503 COORDINATOR_UNAVAILABLE", async () => {
    impl.getTrade = () => new Promise((resolve) => setTimeout(() => resolve(sampleTrade()), 1_000));
    const started = Date.now();
    const res = await t.app.request(`${API}/${TRADE_ID}`, { headers: await user() });
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe("COORDINATOR_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(900);
  });
});
