import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, errorOf, QUOTE_ID, send, TRADE_ID, type TestApp } from "../_test/app.js";
import { signToken } from "../_test/auth.js";

// Bad input is answered at the edge: the right 4xx, the one error shape, and no call to the
// coordinator. The coordinator's port has nothing listening, so any call would have answered
// 503 COORDINATOR_UNAVAILABLE: a 4xx here is an answer given before calling.

const API = "/api/v1/instant-trade";
const CPF = "52998224725";
const OTHER_CPF = "11144477735";

interface Case {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  as?: "user" | "admin";
  document?: string;
  status: number;
  code: string;
  fields?: string[];
}

const quote = (body: unknown, status: number, code: string, fields?: string[]): Omit<Case, "name"> => ({
  method: "POST", path: `${API}/quote`, body, status, code, ...(fields ? { fields } : {}),
});
const idem = { "idempotency-key": "key-1" };
const create = (body: unknown, status: number, code: string, headers: Record<string, string> = idem, fields?: string[]): Omit<Case, "name"> => ({
  method: "POST", path: `${API}/create`, body, headers, status, code, ...(fields ? { fields } : {}),
});
const pix = (body: Record<string, unknown>, status: number, code: string, document?: string): Omit<Case, "name"> => ({
  method: "PUT",
  path: "/api/v1/users/me/pix-key",
  body: { key_type: "phone", key: "+5511987654321", holder_document: CPF, holder_name: "Maria", ...body },
  status,
  code,
  ...(document ? { document } : {}),
});
const VALID_QUOTE = { symbol: "USDT", network: "polygon", crypto_amount: "100.5" };
const VALID_CREATE = { quote_id: QUOTE_ID, refund_address: "0xabc" };

const cases: Case[] = [
  // --- quote
  { name: "quote: malformed JSON", ...quote("{\"symbol\": ", 400, "INVALID_JSON") },
  { name: "quote: empty body with a JSON content type", ...quote("", 400, "INVALID_JSON") },
  { name: "quote: not JSON content type", ...quote("{}", 400, "INVALID_JSON"), headers: { "content-type": "text/plain" } },
  { name: "quote: a JSON array", ...quote([], 422, "VALIDATION_ERROR", ["(root)"]) },
  { name: "quote: null", ...quote("null", 422, "VALIDATION_ERROR", ["(root)"]) },
  { name: "quote: missing fields", ...quote({}, 422, "VALIDATION_ERROR", ["symbol", "network"]) },
  { name: "quote: wrong types", ...quote({ symbol: 1, network: true, crypto_amount: 100.5 }, 422, "VALIDATION_ERROR", ["symbol", "network", "crypto_amount"]) },
  { name: "quote: unknown field", ...quote({ ...VALID_QUOTE, price: "1" }, 422, "VALIDATION_ERROR", ["price"]) },
  { name: "quote: both amounts", ...quote({ ...VALID_QUOTE, fiat_amount: "10" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: neither amount", ...quote({ symbol: "USDT", network: "polygon" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: negative", ...quote({ ...VALID_QUOTE, crypto_amount: "-1" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: exponent", ...quote({ ...VALID_QUOTE, crypto_amount: "1e18" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: comma decimal", ...quote({ ...VALID_QUOTE, crypto_amount: "1,5" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: trailing dot", ...quote({ ...VALID_QUOTE, crypto_amount: "1." }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: spaces", ...quote({ ...VALID_QUOTE, crypto_amount: " 1" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: empty amount", ...quote({ ...VALID_QUOTE, crypto_amount: "" }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: enormous amount", ...quote({ ...VALID_QUOTE, crypto_amount: "9".repeat(41) }, 422, "VALIDATION_ERROR", ["crypto_amount"]) },
  { name: "quote: enormous fiat", ...quote({ symbol: "USDT", network: "polygon", fiat_amount: `1.${"0".repeat(40)}` }, 422, "VALIDATION_ERROR", ["fiat_amount"]) },
  { name: "quote: symbol too long", ...quote({ ...VALID_QUOTE, symbol: "X".repeat(33) }, 422, "VALIDATION_ERROR", ["symbol"]) },
  { name: "quote: deeply nested array", ...quote(`${"[".repeat(8000)}${"]".repeat(8000)}`, 422, "VALIDATION_ERROR", ["(root)"]) },
  { name: "quote: __proto__ key", ...quote(`{"__proto__":{"admin":true},"symbol":"USDT","network":"polygon","crypto_amount":"1"}`, 422, "VALIDATION_ERROR", ["__proto__"]) },
  { name: "quote: oversized body", ...quote({ ...VALID_QUOTE, symbol: "x".repeat(17_000) }, 413, "PAYLOAD_TOO_LARGE") },
  // --- create
  { name: "create: no Idempotency-Key", ...create(VALID_CREATE, 422, "VALIDATION_ERROR", {}, ["Idempotency-Key"]) },
  { name: "create: Idempotency-Key with a space", ...create(VALID_CREATE, 422, "VALIDATION_ERROR", { "idempotency-key": "a b" }, ["Idempotency-Key"]) },
  { name: "create: Idempotency-Key too long", ...create(VALID_CREATE, 422, "VALIDATION_ERROR", { "idempotency-key": "k".repeat(129) }, ["Idempotency-Key"]) },
  { name: "create: malformed JSON", ...create("{", 400, "INVALID_JSON") },
  { name: "create: missing refund_address", ...create({ quote_id: QUOTE_ID }, 422, "VALIDATION_ERROR", idem, ["refund_address"]) },
  { name: "create: wrong types", ...create({ quote_id: 7, refund_address: ["x"] }, 422, "VALIDATION_ERROR", idem, ["quote_id", "refund_address"]) },
  { name: "create: unknown field", ...create({ ...VALID_CREATE, user_id: "someone-else" }, 422, "VALIDATION_ERROR", idem, ["user_id"]) },
  { name: "create: malformed quote id", ...create({ ...VALID_CREATE, quote_id: "qte_123" }, 400, "INVALID_ID") },
  { name: "create: a trade id as quote id", ...create({ ...VALID_CREATE, quote_id: TRADE_ID }, 400, "INVALID_ID") },
  { name: "create: oversized body", ...create({ ...VALID_CREATE, refund_address: "a".repeat(20_000) }, 413, "PAYLOAD_TOO_LARGE") },
  // --- trade ids in paths
  ...[
    "trd_x",
    "TRD_06H2D176HDA7FC46FCHWK6MZA8",
    "trd_06h2d176hda7fc46fchwk6mzai", // i is not in the alphabet
    "trd_06h2d176hda7fc46fchwk6mza8x",
    QUOTE_ID,
    "%00",
    "trd_06h2d176hda7fc46fchwk6mza8%20",
  ].flatMap((id): Case[] => [
    { name: `get: bad id ${id}`, method: "GET", path: `${API}/${id}`, status: 400, code: "INVALID_ID", fields: ["trade_id"] },
    { name: `cancel: bad id ${id}`, method: "POST", path: `${API}/${id}/cancel`, status: 400, code: "INVALID_ID" },
    { name: `audit-log: bad id ${id}`, method: "GET", path: `${API}/${id}/audit-log`, status: 400, code: "INVALID_ID" },
    { name: `complete: bad id ${id}`, method: "POST", path: `${API}/${id}/complete`, body: { reason: "ok" }, as: "admin", status: 400, code: "INVALID_ID" },
    { name: `confirm-payment: bad id ${id}`, method: "POST", path: `${API}/${id}/confirm-payment`, body: { reason: "ok" }, as: "admin", status: 400, code: "INVALID_ID" },
  ]),
  // --- cancel and admin bodies
  { name: "cancel: unknown field", method: "POST", path: `${API}/${TRADE_ID}/cancel`, body: { why: "x" }, status: 422, code: "VALIDATION_ERROR", fields: ["why"] },
  { name: "cancel: reason too long", method: "POST", path: `${API}/${TRADE_ID}/cancel`, body: { reason: "r".repeat(501) }, status: 422, code: "VALIDATION_ERROR", fields: ["reason"] },
  { name: "cancel: malformed JSON", method: "POST", path: `${API}/${TRADE_ID}/cancel`, body: "{", status: 400, code: "INVALID_JSON" },
  ...(["confirm-payment", "complete"] as const).flatMap((action): Case[] => [
    { name: `${action}: no reason`, method: "POST", path: `${API}/${TRADE_ID}/${action}`, body: {}, as: "admin", status: 422, code: "VALIDATION_ERROR", fields: ["reason"] },
    { name: `${action}: blank reason`, method: "POST", path: `${API}/${TRADE_ID}/${action}`, body: { reason: "   " }, as: "admin", status: 422, code: "VALIDATION_ERROR", fields: ["reason"] },
    { name: `${action}: reason too long`, method: "POST", path: `${API}/${TRADE_ID}/${action}`, body: { reason: "r".repeat(501) }, as: "admin", status: 422, code: "VALIDATION_ERROR", fields: ["reason"] },
    { name: `${action}: reason not a string`, method: "POST", path: `${API}/${TRADE_ID}/${action}`, body: { reason: 5 }, as: "admin", status: 422, code: "VALIDATION_ERROR", fields: ["reason"] },
    { name: `${action}: no body`, method: "POST", path: `${API}/${TRADE_ID}/${action}`, body: "", as: "admin", status: 400, code: "INVALID_JSON" },
  ]),
  // --- history
  ...["limit=0", "limit=101", "limit=abc", "limit=1.5", "status=DONE", `cursor=${"c".repeat(513)}`].map((q): Case => ({
    name: `history: ${q.slice(0, 20)}`, method: "GET", path: `${API}/history/my-trades?${q}`, status: 422, code: "VALIDATION_ERROR", fields: [q.split("=")[0]!],
  })),
  // --- pix key
  { name: "pix: unknown key_type", ...pix({ key_type: "iban" }, 422, "VALIDATION_ERROR") },
  { name: "pix: missing holder_name", ...pix({ holder_name: undefined }, 422, "VALIDATION_ERROR") },
  { name: "pix: unknown field", ...pix({ bank: "001" }, 422, "VALIDATION_ERROR") },
  { name: "pix: invalid phone", ...pix({ key: "11987654321" }, 422, "INVALID_PIX_KEY") },
  { name: "pix: invalid cpf key", ...pix({ key_type: "cpf", key: "12345678900" }, 422, "INVALID_PIX_KEY") },
  { name: "pix: uppercase email", ...pix({ key_type: "email", key: "Maria@Example.com" }, 422, "INVALID_PIX_KEY") },
  { name: "pix: invalid evp", ...pix({ key_type: "evp", key: "not-a-uuid" }, 422, "INVALID_PIX_KEY") },
  { name: "pix: invalid holder_document", ...pix({ holder_document: "12345678900" }, 422, "VALIDATION_ERROR") },
  { name: "pix: holder_document is not the token's document", ...pix({}, 422, "HOLDER_DOCUMENT_MISMATCH", OTHER_CPF) },
  { name: "pix: a cpf key of someone else", ...pix({ key_type: "cpf", key: OTHER_CPF }, 422, "HOLDER_DOCUMENT_MISMATCH") },
  { name: "pix: malformed JSON", ...pix({}, 400, "INVALID_JSON"), body: "{" },
  { name: "pix: oversized", ...pix({ holder_name: "n".repeat(20_000) }, 413, "PAYLOAD_TOO_LARGE") },
];

async function run(t: TestApp, c: Case): Promise<void> {
  const authorization = `Bearer ${await signToken({ sub: "user-1", role: c.as ?? "user", ...(c.document ? { document: c.document } : {}) })}`;
  const res = await send(t.app, c.method, c.path, { body: c.body, headers: { authorization, ...c.headers } });
  const err = await errorOf(res);
  expect({ status: res.status, code: err.code }).toEqual({ status: c.status, code: c.code });
  if (c.fields) {
    const listed = (err.details.fields as { field: string }[]).map((f) => f.field);
    expect(listed).toEqual(expect.arrayContaining(c.fields));
  }
}

describe("bad input, coordinator down", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildAppWithoutCoordinator();
  });
  afterAll(() => t.close());
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_, c) => run(t, c));
});

describe("good input reaches the coordinator (down here: 503 COORDINATOR_UNAVAILABLE)", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildAppWithoutCoordinator();
  });
  afterAll(() => t.close());

  const good: [string, string, string, unknown, Record<string, string>?, "admin"?][] = [
    ["assets without a token", "GET", `${API}/assets`, undefined],
    ["quote by crypto", "POST", `${API}/quote`, VALID_QUOTE],
    ["quote by fiat, zero (the coordinator refuses zero)", "POST", `${API}/quote`, { symbol: "USDT", network: "polygon", fiat_amount: "0" }],
    ["create", "POST", `${API}/create`, VALID_CREATE, idem],
    ["get", "GET", `${API}/${TRADE_ID}`, undefined],
    ["cancel without a body", "POST", `${API}/${TRADE_ID}/cancel`, undefined],
    ["cancel with a reason", "POST", `${API}/${TRADE_ID}/cancel`, { reason: "changed my mind" }],
    ["history", "GET", `${API}/history/my-trades?limit=5&status=PENDING&cursor=abc`, undefined],
    ["audit-log", "GET", `${API}/${TRADE_ID}/audit-log`, undefined],
    ["confirm-payment", "POST", `${API}/${TRADE_ID}/confirm-payment`, { reason: "seen on chain" }, {}, "admin"],
    ["pix key get", "GET", "/api/v1/users/me/pix-key", undefined],
    ["pix key put, punctuated document", "PUT", "/api/v1/users/me/pix-key", { key_type: "cpf", key: "529.982.247-25", holder_document: "529.982.247-25", holder_name: "Maria" }],
  ];
  it.each(good)("%s", async (_, method, path, body, headers, role) => {
    const authorization = `Bearer ${await signToken({ sub: "user-1", role: role ?? "user", document: CPF })}`;
    const h: Record<string, string> = { ...(path.endsWith("/assets") ? {} : { authorization }), ...headers };
    // Without a body, no content type either (as fetch sends it).
    const res =
      body === undefined ? await t.app.request(path, { method, headers: h }) : await send(t.app, method, path, { body, headers: h });
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe("COORDINATOR_UNAVAILABLE");
  });
});
