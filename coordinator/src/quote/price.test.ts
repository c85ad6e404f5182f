import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { ConfigError, PonteError, parsePrice } from "@ponte/common";
import {
  createHttpTickerPriceSource,
  createStaticPriceSource,
  jsonPath,
  median,
  parseJsonNumbersAsText,
  readTickerPrice,
  type HttpTickerOptions,
} from "./price.js";
import type { Asset } from "./types.js";

const asset = (priceKey: string): Asset => ({
  id: `test:${priceKey}`,
  symbol: priceKey,
  network: "test",
  family: "evm",
  name: priceKey,
  decimals: 18,
  minAmount: 1n,
  maxAmount: 10n ** 30n,
  confirmations: 1,
  enabled: true,
  spreadBps: 300n,
  networkFeeBps: 25n,
  priceKey,
});

type Reply = { status?: number; body: string; delayMs?: number };

/** A local ticker server: each path answers what the test set; requests are counted per path. */
async function tickerServer() {
  const replies = new Map<string, Reply>();
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? "";
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const r = replies.get(path);
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(r?.status ?? (r ? 200 : 404), { "content-type": "application/json" });
      res.end(r?.body ?? "{}");
    };
    if (r?.delayMs) setTimeout(send, r.delayMs).unref();
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  onTestFinished(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    base,
    hits: (path: string) => hits.get(path) ?? 0,
    set: (path: string, body: unknown, extra: Omit<Reply, "body"> = {}) =>
      replies.set(path, { body: typeof body === "string" ? body : JSON.stringify(body), ...extra }),
  };
}

/** Three tickers a, b, c at /a/{key} etc., price at "ticker.last". */
function threeTickers(base: string, over: Partial<HttpTickerOptions> = {}): HttpTickerOptions {
  return {
    tickers: ["a", "b", "c"].map((name) => ({ name, url: `${base}/${name}/{key}`, path: "ticker.last" })),
    minSources: 2,
    maxAgeMs: 60_000,
    maxDeviationPercent: "2",
    // Generous: a loaded CI machine must not turn a local answer into a timeout.
    timeoutMs: 5_000,
    cacheMs: 0,
    ...over,
  };
}

const last = (v: string) => ({ ticker: { last: v } });

async function priceError(p: Promise<unknown>): Promise<PonteError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PonteError);
    return err as PonteError;
  }
  throw new Error("expected a PonteError");
}

describe("createHttpTickerPriceSource", () => {
  it("takes the median of the sources", async () => {
    const s = await tickerServer();
    s.set("/a/BTC", last("350000.00"));
    s.set("/b/BTC", last("351000.50"));
    s.set("/c/BTC", last("349900"));
    const src = createHttpTickerPriceSource(threeTickers(s.base));
    expect(await src.price(asset("BTC"))).toBe(parsePrice("350000"));
  });

  it("floors the mean of the middle two for an even count", async () => {
    const s = await tickerServer();
    s.set("/a/X", last("1.000000000000000001"));
    s.set("/b/X", last("1.000000000000000002"));
    s.set("/c/X", "not json");
    const src = createHttpTickerPriceSource(threeTickers(s.base));
    expect(await src.price(asset("X"))).toBe(1_000_000_000_000_000_001n);
  });

  it("reads a JSON number from its text, beyond float precision", async () => {
    const s = await tickerServer();
    const body = '{"ticker":{"last":345678.123456789012345678}}';
    s.set("/a/BTC", body);
    s.set("/b/BTC", body);
    const src = createHttpTickerPriceSource(threeTickers(s.base));
    expect(await src.price(asset("BTC"))).toBe(345678_123456789012345678n);
  });

  it("refuses a price in exponent form from that source", async () => {
    const s = await tickerServer();
    s.set("/a/BTC", '{"ticker":{"last":3.5E5}}');
    s.set("/b/BTC", last("350000"));
    const src = createHttpTickerPriceSource(threeTickers(s.base));
    const e = await priceError(src.price(asset("BTC")));
    expect(e.code).toBe("PRICE_UNAVAILABLE");
    expect(e.retryable).toBe(true);
    expect(e.details).toMatchObject({
      price_key: "BTC",
      reason: "too_few_sources",
      fresh: 1,
      required: 2,
      sources: [
        { name: "a", status: "error", error: expect.stringContaining("exponent") },
        { name: "b", status: "ok", price: "350000" },
        { name: "c", status: "error", error: "HTTP 404" },
      ],
    });
  });

  it("refuses when fewer than minSources answer", async () => {
    const s = await tickerServer();
    s.set("/a/ETH", last("20000"));
    s.set("/b/ETH", last("20000"), { status: 500 });
    s.set("/c/ETH", { ticker: {} });
    const src = createHttpTickerPriceSource(threeTickers(s.base));
    const e = await priceError(src.price(asset("ETH")));
    expect(e.details).toMatchObject({
      reason: "too_few_sources",
      sources: [
        { name: "a", status: "ok" },
        { name: "b", status: "error", error: "HTTP 500" },
        { name: "c", status: "error", error: "price is missing" },
      ],
    });
  });

  it("treats a source that does not answer in time as failed", async () => {
    const s = await tickerServer();
    s.set("/a/SOL", last("900"));
    s.set("/b/SOL", last("900"));
    s.set("/c/SOL", last("900"), { delayMs: 60_000 });
    const src = createHttpTickerPriceSource(threeTickers(s.base, { minSources: 3, timeoutMs: 1_500 }));
    const e = await priceError(src.price(asset("SOL")));
    expect(e.details).toMatchObject({ sources: [{ status: "ok" }, { status: "ok" }, { name: "c", status: "error", error: "timeout" }] });
  });

  it("ignores prices older than maxAgeMs by the ticker's own timestamp", async () => {
    const s = await tickerServer();
    const now = 1_700_000_000_000;
    const at = (ms: number) => ({ ticker: { last: "5.40", date: (now - ms) / 1000 } });
    s.set("/a/USDT", at(1_000));
    s.set("/b/USDT", at(61_000));
    s.set("/c/USDT", at(59_500));
    const opts = threeTickers(s.base, { now: () => now });
    opts.tickers = opts.tickers.map((t) => ({ ...t, time: { path: "ticker.date", unit: "s" as const } }));
    const src = createHttpTickerPriceSource({ ...opts, minSources: 3 });
    const e = await priceError(src.price(asset("USDT")));
    expect(e.details).toMatchObject({
      reason: "too_few_sources",
      fresh: 2,
      sources: [
        { name: "a", status: "ok", age_ms: 1_000 },
        { name: "b", status: "stale", age_ms: 61_000 },
        { name: "c", status: "ok", age_ms: 59_500 },
      ],
    });
    const two = createHttpTickerPriceSource({ ...opts, minSources: 2 });
    expect(await two.price(asset("USDT"))).toBe(parsePrice("5.4"));
  });

  it("treats a timestamp far in the future as stale, and reads ISO and millisecond times", async () => {
    const s = await tickerServer();
    const now = Date.parse("2025-01-01T00:00:00Z");
    s.set("/a/USDT", { p: "5.4", t: "2025-01-01T00:02:00Z" });
    s.set("/b/USDT", { p: "5.4", t: "2024-12-31T23:59:30Z" });
    s.set("/c/USDT", { p: "5.4", t: now - 10_000 });
    const src = createHttpTickerPriceSource({
      tickers: [
        { name: "a", url: `${s.base}/a/{key}`, path: "p", time: { path: "t", unit: "iso" } },
        { name: "b", url: `${s.base}/b/{key}`, path: "p", time: { path: "t", unit: "iso" } },
        { name: "c", url: `${s.base}/c/{key}`, path: "p", time: { path: "t", unit: "ms" } },
      ],
      minSources: 3,
      maxAgeMs: 60_000,
      cacheMs: 0,
      now: () => now,
    });
    const e = await priceError(src.price(asset("USDT")));
    expect(e.details).toMatchObject({
      sources: [
        { name: "a", status: "stale", age_ms: -120_000 },
        { name: "b", status: "ok", age_ms: 30_000 },
        { name: "c", status: "ok", age_ms: 10_000 },
      ],
    });
  });

  it("refuses when a source is further from the median than allowed, and accepts the boundary", async () => {
    const s = await tickerServer();
    s.set("/a/BNB", last("100"));
    s.set("/b/BNB", last("100"));
    s.set("/c/BNB", last("110"));
    const strict = createHttpTickerPriceSource(threeTickers(s.base, { maxDeviationPercent: "9.99" }));
    const e = await priceError(strict.price(asset("BNB")));
    expect(e.details).toMatchObject({ reason: "sources_disagree", median: "100", max_deviation_percent: "9.99" });
    const exact = createHttpTickerPriceSource(threeTickers(s.base, { maxDeviationPercent: "10" }));
    expect(await exact.price(asset("BNB"))).toBe(parsePrice("100"));
  });

  it("asks each ticker by its own symbol and skips tickers that do not quote the key", async () => {
    const s = await tickerServer();
    s.set("/a/btcbrl", last("350000"));
    s.set("/b/BTC", last("350000"));
    const opts = threeTickers(s.base);
    opts.tickers[0]!.symbols = { BTC: "btcbrl" };
    opts.tickers[2]!.symbols = { BTC: null };
    const src = createHttpTickerPriceSource(opts);
    expect(await src.price(asset("BTC"))).toBe(parsePrice("350000"));
    expect(s.hits("/a/btcbrl")).toBe(1);
    expect(s.hits("/c/BTC")).toBe(0);
  });

  it("answers from one round of fetches for cacheMs, shared by concurrent requests", async () => {
    const s = await tickerServer();
    for (const n of ["a", "b", "c"]) s.set(`/${n}/LTC`, last("400"), { delayMs: 50 });
    let now = 1_000_000;
    const src = createHttpTickerPriceSource(threeTickers(s.base, { cacheMs: 5_000, now: () => now }));
    await Promise.all([src.price(asset("LTC")), src.price(asset("LTC")), src.price(asset("LTC"))]);
    expect(s.hits("/a/LTC")).toBe(1);
    now += 4_999;
    await src.price(asset("LTC"));
    expect(s.hits("/a/LTC")).toBe(1);
    now += 1;
    await src.price(asset("LTC"));
    expect(s.hits("/a/LTC")).toBe(2);
  });

  it("refuses after close()", async () => {
    const s = await tickerServer();
    const src = createHttpTickerPriceSource(threeTickers(s.base));
    await src.close?.();
    const e = await priceError(src.price(asset("BTC")));
    expect(e.details).toMatchObject({ reason: "closed" });
  });

  it("validates its options", () => {
    const base = "http://127.0.0.1:1";
    expect(() => createHttpTickerPriceSource(threeTickers(base, { minSources: 4 }))).toThrow(ConfigError);
    expect(() => createHttpTickerPriceSource(threeTickers(base, { cacheMs: 60_000 }))).toThrow(ConfigError);
    expect(() => createHttpTickerPriceSource(threeTickers(base, { maxDeviationPercent: "1.234" }))).toThrow(ConfigError);
    expect(() =>
      createHttpTickerPriceSource({ tickers: [{ name: "a", url: `${base}/ticker`, path: "last" }], minSources: 1 }),
    ).toThrow("{key}");
    expect(() =>
      createHttpTickerPriceSource({
        tickers: [
          { name: "a", url: `${base}/{key}`, path: "last" },
          { name: "a", url: `${base}/x/{key}`, path: "last" },
        ],
      }),
    ).toThrow("unique");
  });
});

describe("parseJsonNumbersAsText", () => {
  it("keeps number literals as their text and leaves strings alone", () => {
    expect(parseJsonNumbersAsText('{"a":-0.10,"b":[1,2.50e3],"c":"x\\"9\\\\","d":true,"e":null,"f":"7"}')).toEqual({
      a: "-0.10",
      b: ["1", "2.50e3"],
      c: 'x"9\\',
      d: true,
      e: null,
      f: "7",
    });
  });

  it("still rejects malformed JSON", () => {
    expect(() => parseJsonNumbersAsText('{"a":01}')).toThrow();
    expect(() => parseJsonNumbersAsText('{"a":-}')).toThrow();
    expect(() => parseJsonNumbersAsText('{"a":"unterminated}')).toThrow();
  });
});

describe("readTickerPrice and jsonPath", () => {
  it("reads plain decimals only", () => {
    expect(readTickerPrice("5.4321")).toBe(5_432_100_000_000_000_000n);
    expect(readTickerPrice("7")).toBe(7n * 10n ** 18n);
    for (const bad of ["-1", "1e5", "1E-3", "0", "0.000", "", "1,5", ".5", "1.0000000000000000001"])
      expect(() => readTickerPrice(bad), bad).toThrow();
    expect(() => readTickerPrice(undefined)).toThrow("missing");
    expect(() => readTickerPrice(true)).toThrow();
  });

  it("walks objects and arrays by own properties", () => {
    const doc = { data: [{ price: "1" }], ticker: { last: "2" } };
    expect(jsonPath(doc, "data.0.price")).toBe("1");
    expect(jsonPath(doc, "ticker.last")).toBe("2");
    expect(jsonPath(doc, "ticker.constructor")).toBeUndefined();
    expect(jsonPath(doc, "nope.x")).toBeUndefined();
  });

  it("takes the median", () => {
    expect(median([3n, 1n, 2n])).toBe(2n);
    expect(median([4n, 1n, 2n, 3n])).toBe(2n);
    expect(median([5n])).toBe(5n);
    expect(() => median([])).toThrow(RangeError);
  });
});

describe("createStaticPriceSource", () => {
  it("answers fixed prices and can be moved", async () => {
    const src = createStaticPriceSource({ BTC: "350000.00", USDT: "5.4321" });
    expect(await src.price(asset("BTC"))).toBe(parsePrice("350000"));
    src.set("BTC", "360000");
    expect(await src.price(asset("BTC"))).toBe(parsePrice("360000"));
  });

  it("refuses unknown keys with PRICE_UNAVAILABLE", async () => {
    const e = await priceError(createStaticPriceSource({}).price(asset("ETH")));
    expect(e.code).toBe("PRICE_UNAVAILABLE");
    expect(e.details).toMatchObject({ price_key: "ETH" });
  });

  it("rejects bad prices at creation", () => {
    expect(() => createStaticPriceSource({ BTC: "0" })).toThrow(ConfigError);
    expect(() => createStaticPriceSource({ BTC: "1e5" })).toThrow(ConfigError);
  });
});
