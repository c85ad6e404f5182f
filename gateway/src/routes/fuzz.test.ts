import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, isErrorShape, QUOTE_ID, send, TRADE_ID, type TestApp } from "../_test/app.js";
import { signToken } from "../_test/auth.js";

// Generated bodies against quote and create with the coordinator down. Whatever arrives, the
// answer is a 4xx in the error shape; a body the gateway finds valid reaches for the coordinator
// and gets 503 COORDINATOR_UNAVAILABLE. Nothing else, and never another 5xx.

const RUNS = 300;
let t: TestApp;
let authorization: string;

beforeAll(async () => {
  t = await buildAppWithoutCoordinator();
  authorization = `Bearer ${await signToken({ sub: "user-1" })}`;
});
afterAll(() => t.close());

async function answer(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await send(t.app, "POST", path, { body, headers: { authorization, ...headers } });
  const json: unknown = await res.json();
  expect(isErrorShape(json), JSON.stringify(json)).toBe(true);
  const code = (json as { error: { code: string } }).error.code;
  if (res.status >= 500) expect({ status: res.status, code }).toEqual({ status: 503, code: "COORDINATOR_UNAVAILABLE" });
  else expect(res.status).toBeGreaterThanOrEqual(400);
  return { status: res.status, code };
}

// ---- generators that mix the valid with the subtly wrong

const AMOUNT = /^\d+(\.\d+)?$/;
const digits = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 30 });
const goodAmount = fc.oneof(digits, fc.tuple(digits, digits).map(([a, b]) => `${a}.${b}`));
const badAmount = fc.oneof(
  fc.constantFrom("", "-1", "1e5", "1.", ".5", " 1", "1 ", "1,5", "0x10", "NaN", "Infinity", "١٢٣", "1.2.3", "+1"),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 41, maxLength: 60 }),
);
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
const text = (max: number) => fc.string({ minLength: 0, maxLength: max + 4 });
/** Mostly the valid value, so both verdicts get plenty of runs. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: good, weight: 3 }, { arbitrary: bad, weight: 1 });
const rarely = <T>(arb: fc.Arbitrary<T>) => mostly(fc.constant(undefined), arb);

const quoteBody = fc.record(
  {
    symbol: mostly(fc.constantFrom("USDT", "BTC"), fc.oneof(text(32), notAString)),
    network: mostly(fc.constantFrom("polygon", "bitcoin"), fc.oneof(text(32), notAString)),
    crypto_amount: fc.option(mostly(goodAmount, fc.oneof(badAmount, notAString)), { nil: undefined, freq: 2 }),
    fiat_amount: fc.option(mostly(goodAmount, fc.oneof(badAmount, notAString)), { nil: undefined, freq: 2 }),
    extra: rarely(fc.jsonValue({ maxDepth: 1 })),
  },
  { requiredKeys: ["symbol", "network"] },
).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));

const isAmount = (v: unknown) => typeof v === "string" && v.length <= 40 && AMOUNT.test(v);
const isName = (v: unknown) => typeof v === "string" && v.length >= 1 && v.length <= 32;
/** The contract, written independently of the zod schema. */
function quoteIsValid(b: Record<string, unknown>): boolean {
  if (Object.keys(b).some((k) => !["symbol", "network", "crypto_amount", "fiat_amount"].includes(k))) return false;
  const amounts = ["crypto_amount", "fiat_amount"].filter((k) => k in b);
  return isName(b.symbol) && isName(b.network) && amounts.length === 1 && isAmount(b[amounts[0]!]);
}

const ID_CHARS = "0123456789abcdefghjkmnpqrstvwxyz";
const goodQuoteId = fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 26, maxLength: 26 }).map((s) => `qte_${s}`);
const badQuoteId = fc.oneof(
  fc.constantFrom(TRADE_ID, "qte_", `${QUOTE_ID}0`, QUOTE_ID.toUpperCase(), QUOTE_ID.replace(/.$/, "i")),
  fc.string({ minLength: 1, maxLength: 64 }),
);
const createBody = fc.record(
  {
    quote_id: mostly(goodQuoteId, fc.oneof(badQuoteId, notAString, fc.string({ minLength: 65, maxLength: 70 }))),
    refund_address: mostly(fc.constant("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"), fc.oneof(text(128), notAString)),
    extra: rarely(fc.jsonValue({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));

const KEY_CHARS = [..."abcXYZ019_-:.", ..." /@#\"'{}"];
const idempotencyKey = mostly(
  fc.string({ unit: fc.constantFrom(..."abcXYZ019_-:."), minLength: 1, maxLength: 128 }),
  fc.oneof(fc.string({ unit: fc.constantFrom(...KEY_CHARS), minLength: 0, maxLength: 140 }), fc.constant(undefined)),
);

type Verdict = "invalid_header" | "invalid_body" | "invalid_id" | "valid";
function createVerdict(b: Record<string, unknown>, rawKey: string | undefined): Verdict {
  // HTTP drops the whitespace around a header value before anyone sees it (Fetch "normalize").
  const key = rawKey?.replace(/^[ \t]+|[ \t]+$/g, "");
  if (key === undefined || !/^[A-Za-z0-9_\-:.]{1,128}$/.test(key)) return "invalid_header";
  if (Object.keys(b).some((k) => k !== "quote_id" && k !== "refund_address")) return "invalid_body";
  const q = b.quote_id;
  const r = b.refund_address;
  if (typeof q !== "string" || q.length < 1 || q.length > 64) return "invalid_body";
  if (typeof r !== "string" || r.length < 1 || r.length > 128) return "invalid_body";
  return /^qte_[0-9a-hjkmnp-tv-z]{26}$/.test(q) ? "valid" : "invalid_id";
}

describe("POST /quote with generated bodies", () => {
  it("answers 422 exactly when the body breaks the contract, else reaches the coordinator", async () => {
    await fc.assert(
      fc.asyncProperty(quoteBody, async (body) => {
        const { status, code } = await answer("/api/v1/instant-trade/quote", body);
        if (quoteIsValid(body)) expect(status).toBe(503);
        else expect({ status, code }).toEqual({ status: 422, code: "VALIDATION_ERROR" });
      }),
      { numRuns: RUNS },
    );
  });

  it("never answers a 5xx other than 503 to any JSON value", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (body) => {
        await answer("/api/v1/instant-trade/quote", JSON.stringify(body));
      }),
      { numRuns: RUNS },
    );
  });

  it("answers 400 INVALID_JSON to text that is not JSON", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (raw) => {
        let parses = true;
        try {
          JSON.parse(raw);
        } catch {
          parses = false;
        }
        const { status, code } = await answer("/api/v1/instant-trade/quote", raw);
        if (!parses) expect({ status, code }).toEqual({ status: 400, code: "INVALID_JSON" });
      }),
      { numRuns: RUNS },
    );
  });
});

describe("POST /create with generated bodies and keys", () => {
  it("tells a bad key, a bad body and a bad id apart, and lets only valid requests through", async () => {
    await fc.assert(
      fc.asyncProperty(createBody, idempotencyKey, async (body, key) => {
        const { status, code } = await answer("/api/v1/instant-trade/create", body, key === undefined ? {} : { "idempotency-key": key });
        const expected = {
          invalid_header: { status: 422, code: "VALIDATION_ERROR" },
          invalid_body: { status: 422, code: "VALIDATION_ERROR" },
          invalid_id: { status: 400, code: "INVALID_ID" },
          valid: { status: 503, code: "COORDINATOR_UNAVAILABLE" },
        }[createVerdict(body, key)];
        expect({ status, code }).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it("never answers a 5xx other than 503 to any JSON value", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (body) => {
        await answer("/api/v1/instant-trade/create", JSON.stringify(body), { "idempotency-key": "k1" });
      }),
      { numRuns: RUNS },
    );
  });
});

describe("Authorization headers", () => {
  it("anything but a valid token is 401", async () => {
    const headerText = fc.string({ unit: fc.constantFrom(..."Bearer abcXYZ019._-=+/ \t"), maxLength: 300 });
    await fc.assert(
      fc.asyncProperty(headerText, async (value) => {
        const res = await t.app.request(`/api/v1/instant-trade/${TRADE_ID}`, { headers: { authorization: value } });
        expect(res.status).toBe(401);
        expect(isErrorShape(await res.json())).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});
