import { z } from "zod";
import {
  BPS_SCALE,
  ConfigError,
  PonteError,
  RetryableError,
  formatPrice,
  parseConfig,
  parsePrice,
  percentToBps,
  safeUrl,
  type Logger,
} from "@ponte/common";
import type { Asset, PriceSource } from "./types.js";

// ---------------------------------------------------------------------------------------------
// Static prices (tests, local development, or a manual override by the desk).

export interface StaticPriceSource extends PriceSource {
  /** Replaces one price (tests that move the market). */
  set(priceKey: string, price: string): void;
}

function parsePositivePrice(value: string, field: string): bigint {
  let p: bigint;
  try {
    p = parsePrice(value);
  } catch (err) {
    if (err instanceof PonteError) throw new ConfigError([{ field, message: err.message }]);
    throw err;
  }
  if (p === 0n) throw new ConfigError([{ field, message: "price must be greater than zero" }]);
  return p;
}

/** Fixed BRL prices per price key, as decimal strings ("350000.00"). */
export function createStaticPriceSource(prices: Record<string, string>): StaticPriceSource {
  const table = new Map<string, bigint>();
  for (const [key, value] of Object.entries(prices)) table.set(key, parsePositivePrice(value, `prices.${key}`));
  return {
    async price(asset: Asset) {
      const p = table.get(asset.priceKey);
      if (p === undefined)
        throw new RetryableError("PRICE_UNAVAILABLE", `No price for ${asset.priceKey}`, {
          price_key: asset.priceKey,
          reason: "unknown_key",
        });
      return p;
    },
    set(key, value) {
      table.set(key, parsePositivePrice(value, `prices.${key}`));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// JSON with number literals kept as their source text.

const NUMBER_TOKEN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * JSON.parse, except that every number literal comes back as its exact source text (a string), so a
 * price like 345678.123456789012345678 never passes through a float. Node 20 has no reviver source
 * access, so number tokens outside strings are quoted before parsing.
 */
export function parseJsonNumbersAsText(text: string): unknown {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === "-" || (ch >= "0" && ch <= "9")) {
      NUMBER_TOKEN.lastIndex = i;
      const m = NUMBER_TOKEN.exec(text);
      if (!m) {
        out += ch; // JSON.parse reports the malformed number
        i++;
      } else {
        out += `"${m[0]}"`;
        i += m[0].length;
      }
    } else {
      out += ch;
      i++;
    }
  }
  return JSON.parse(out);
}

/** Reads "a.b.0.c" from parsed JSON; own properties only. */
export function jsonPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const seg of path.split(".")) {
    if (Array.isArray(cur) && /^\d+$/.test(seg)) cur = cur[Number(seg)];
    else if (cur !== null && typeof cur === "object" && Object.hasOwn(cur, seg)) cur = (cur as Record<string, unknown>)[seg];
    else return undefined;
  }
  return cur;
}

const PLAIN_DECIMAL = /^\d+(?:\.\d+)?$/;

/** A ticker price (JSON string or number text) → fixed-point bigint; refuses exponents, signs, zero. */
export function readTickerPrice(value: unknown): bigint {
  if (typeof value !== "string") throw new Error(`price is ${value === undefined ? "missing" : typeof value}`);
  const s = value.trim();
  if (/[eE]/.test(s)) throw new Error(`price in exponent form: ${s.slice(0, 40)}`);
  if (!PLAIN_DECIMAL.test(s)) throw new Error(`price is not a plain decimal: ${s.slice(0, 40)}`);
  const p = parsePrice(s); // refuses more than PRICE_DECIMALS places rather than rounding
  if (p === 0n) throw new Error("price is zero");
  return p;
}

function readTime(value: unknown, unit: "s" | "ms" | "iso"): number {
  if (typeof value !== "string") throw new Error(`timestamp is ${value === undefined ? "missing" : typeof value}`);
  if (unit === "iso") {
    const t = Date.parse(value);
    if (Number.isNaN(t)) throw new Error("timestamp is not an ISO date");
    return t;
  }
  const m = /^(\d{1,16})(?:\.(\d+))?$/.exec(value.trim());
  if (!m) throw new Error("timestamp is not a plain number");
  // Times, not money: a Number of milliseconds is exact far beyond any real date.
  return unit === "s" ? Number(m[1]) * 1000 + Number((m[2] ?? "").slice(0, 3).padEnd(3, "0")) : Number(m[1]);
}

// ---------------------------------------------------------------------------------------------
// HTTP tickers.

export const TickerConfigSchema = z.strictObject({
  /** Shown in logs and error details (never the URL, which may carry a token). */
  name: z.string().min(1),
  /** URL with a {key} placeholder, e.g. "https://www.mercadobitcoin.net/api/{key}/ticker/". */
  url: z
    .string()
    .refine((u) => u.includes("{key}"), "must contain a {key} placeholder")
    .refine((u) => URL.canParse(u.replaceAll("{key}", "KEY")), "must be a valid URL"),
  /** Dot path to the price in the response, e.g. "ticker.last". */
  path: z.string().min(1),
  /** Price key → the ticker's own symbol; null when this ticker does not quote that key. */
  symbols: z.record(z.string(), z.string().min(1).nullable()).optional(),
  /** Where the ticker says when its price was made; without it, the fetch time is the price's time. */
  time: z.strictObject({ path: z.string().min(1), unit: z.enum(["s", "ms", "iso"]) }).optional(),
});
export type TickerConfig = z.input<typeof TickerConfigSchema>;

export const HttpTickerOptionsSchema = z
  .strictObject({
    tickers: z.array(TickerConfigSchema).min(1),
    /** Fresh prices needed to quote. */
    minSources: z.number().int().min(1).default(2),
    /** A price older than this (by the ticker's timestamp, or by when it was fetched) is ignored. */
    maxAgeMs: z.number().int().positive().default(60_000),
    /** Largest distance of any fresh price from the median, in percent ("2" = 2 %). */
    maxDeviationPercent: z.string().regex(/^\d+(?:\.\d{1,2})?$/, 'must be a percentage like "2" or "0.5"').default("2"),
    timeoutMs: z.number().int().positive().default(2_000),
    /** How long one round of fetches answers later requests for the same key. */
    cacheMs: z.number().int().min(0).default(5_000),
  })
  .refine((o) => o.minSources <= o.tickers.length, { message: "minSources exceeds the number of tickers", path: ["minSources"] })
  .refine((o) => new Set(o.tickers.map((t) => t.name)).size === o.tickers.length, {
    message: "ticker names must be unique",
    path: ["tickers"],
  })
  .refine((o) => o.cacheMs < o.maxAgeMs, { message: "cacheMs must be below maxAgeMs", path: ["cacheMs"] });

export type HttpTickerOptions = z.input<typeof HttpTickerOptionsSchema> & {
  logger?: Logger;
  /** Aborts in-flight requests on shutdown. */
  signal?: AbortSignal;
  /** Clock in epoch milliseconds (tests). */
  now?: () => number;
};

type Observation =
  | { source: string; ok: true; price: bigint; at: number }
  | { source: string; ok: false; error: string };

interface Round {
  fetchedAt: number;
  observations: Observation[];
}

const MAX_BODY_CHARS = 1_000_000;

/**
 * Median of several HTTP BRL tickers, fetched on demand and cached per price key for `cacheMs`.
 * On demand rather than polled because quotes are sporadic and every coordinator replica would
 * otherwise poll every ticker for every key; concurrent requests for a key share one round, and a
 * failed round is cached too, so an outage costs each ticker one request per key per `cacheMs`.
 * Refuses (PRICE_UNAVAILABLE, retryable) when fewer than `minSources` tickers gave a price younger
 * than `maxAgeMs`, or when any fresh price is further than `maxDeviationPercent` from the median.
 * With an even count the median is the floored mean of the middle two (lower price: house side).
 */
export function createHttpTickerPriceSource(options: HttpTickerOptions): PriceSource {
  const { logger, signal, now = Date.now, ...rest } = options;
  const o = parseConfig(HttpTickerOptionsSchema, rest);
  const maxDeviationBps = percentToBps(o.maxDeviationPercent);
  const closed = new AbortController();
  const cache = new Map<string, Round>();
  const inflight = new Map<string, Promise<Round>>();

  const symbolFor = (t: TickerConfig, key: string): string | null =>
    t.symbols && Object.hasOwn(t.symbols, key) ? (t.symbols[key] ?? null) : key;

  async function observe(t: TickerConfig, key: string, symbol: string): Promise<Observation> {
    const url = t.url.replaceAll("{key}", encodeURIComponent(symbol));
    const signals = [AbortSignal.timeout(o.timeoutMs), closed.signal, ...(signal ? [signal] : [])];
    try {
      const res = await fetch(url, { signal: AbortSignal.any(signals), headers: { accept: "application/json" } });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const text = await res.text();
      if (text.length > MAX_BODY_CHARS) throw new Error("response too large");
      const doc = parseJsonNumbersAsText(text);
      const price = readTickerPrice(jsonPath(doc, t.path));
      const at = t.time ? readTime(jsonPath(doc, t.time.path), t.time.unit) : now();
      return { source: t.name, ok: true, price, at };
    } catch (err) {
      const e = err as Error;
      const error = e.name === "TimeoutError" ? "timeout" : e.name === "AbortError" ? "aborted" : e.message;
      logger?.warn({ source: t.name, price_key: key, url: safeUrl(url), error }, "Price source failed");
      return { source: t.name, ok: false, error };
    }
  }

  async function fetchRound(key: string): Promise<Round> {
    const jobs: Promise<Observation>[] = [];
    for (const t of o.tickers) {
      const symbol = symbolFor(t, key);
      if (symbol !== null) jobs.push(observe(t, key, symbol));
    }
    const observations = await Promise.all(jobs);
    return { fetchedAt: now(), observations };
  }

  async function round(key: string): Promise<Round> {
    const cached = cache.get(key);
    if (cached && now() - cached.fetchedAt < o.cacheMs) return cached;
    let p = inflight.get(key);
    if (!p) {
      p = fetchRound(key)
        .then((r) => {
          cache.set(key, r);
          return r;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  }

  function evaluate(key: string, r: Round): bigint {
    const t = now();
    const fresh: bigint[] = [];
    const sources = r.observations.map((ob) => {
      if (!ob.ok) return { name: ob.source, status: "error", error: ob.error };
      const age = t - ob.at;
      // A timestamp far in the future is as untrustworthy as an old one.
      const ok = Math.abs(age) <= o.maxAgeMs;
      if (ok) fresh.push(ob.price);
      return { name: ob.source, status: ok ? "ok" : "stale", price: formatPrice(ob.price), age_ms: age };
    });
    if (fresh.length < o.minSources) {
      throw new RetryableError("PRICE_UNAVAILABLE", `Too few fresh prices for ${key}`, {
        price_key: key,
        reason: "too_few_sources",
        fresh: fresh.length,
        required: o.minSources,
        sources,
      });
    }
    const m = median(fresh);
    const outliers = fresh.filter((p) => absDiff(p, m) * BPS_SCALE > maxDeviationBps * m);
    if (outliers.length) {
      throw new RetryableError("PRICE_UNAVAILABLE", `Price sources disagree for ${key}`, {
        price_key: key,
        reason: "sources_disagree",
        median: formatPrice(m),
        max_deviation_percent: o.maxDeviationPercent,
        sources,
      });
    }
    return m;
  }

  return {
    async price(asset: Asset) {
      if (closed.signal.aborted) throw new RetryableError("PRICE_UNAVAILABLE", "Price source is closed", { price_key: asset.priceKey, reason: "closed" });
      return evaluate(asset.priceKey, await round(asset.priceKey));
    },
    close() {
      closed.abort();
      cache.clear();
    },
  };
}

const absDiff = (a: bigint, b: bigint) => (a > b ? a - b : b - a);

/** Median of a non-empty list; floored mean of the middle two for an even count. */
export function median(values: bigint[]): bigint {
  if (values.length === 0) throw new RangeError("median of nothing");
  const s = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2n;
}
