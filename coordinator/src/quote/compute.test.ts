import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BPS_SCALE, PRICE_SCALE, PonteError, cryptoForBrl, parseBrl, parsePrice, parseUnits, quoteBrl } from "@ponte/common";
import { brlLimits, computeQuote, quoteTerms } from "./compute.js";
import type { Asset } from "./types.js";

const makeAsset = (over: Partial<Asset> = {}): Asset => ({
  id: "bitcoin:BTC",
  symbol: "BTC",
  network: "bitcoin",
  family: "utxo",
  name: "Bitcoin",
  decimals: 8,
  minAmount: 10_000n, // 0.0001
  maxAmount: 500_000_000n, // 5
  confirmations: 3,
  enabled: true,
  spreadBps: 300n,
  networkFeeBps: 25n,
  priceKey: "BTC",
  ...over,
});
const usdt = makeAsset({
  id: "polygon:USDT",
  symbol: "USDT",
  network: "polygon",
  family: "evm",
  decimals: 6,
  minAmount: 5_000_000n,
  maxAmount: 200_000_000_000n,
  priceKey: "USDT",
});

function codeOf(fn: () => unknown): { code: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PonteError);
    return { code: (err as PonteError).code, details: (err as PonteError).details };
  }
  throw new Error("expected a PonteError");
}

describe("computeQuote by crypto amount", () => {
  it("prices 1 BTC at R$ 350,000 with 3 % spread and 0.25 % fee", () => {
    const q = computeQuote({ asset: makeAsset(), price: parsePrice("350000"), cryptoAmount: 100_000_000n });
    expect(q).toEqual({
      cryptoAmount: 100_000_000n,
      fiatCentavos: parseBrl("338625.00"),
      spreadCentavos: parseBrl("10500.00"),
      networkFeeCentavos: parseBrl("875.00"),
      grossCentavos: parseBrl("350000.00"),
      roundingCentavos: 0n,
    });
  });

  it("floors every part and reports the residue (1 USDT at R$ 5.4321)", () => {
    // gross 543.21 → 543; fiat 525.555675 → 525; spread 16.2963 → 16; fee 1.358025 → 1; residue 1.
    const q = computeQuote({ asset: usdt, price: parsePrice("5.4321"), cryptoAmount: 5_000_000n });
    expect(q.fiatCentavos).toBe(quoteBrl(5_000_000n, quoteTerms(usdt, parsePrice("5.4321"))));
    const one = computeQuote({ asset: { ...usdt, minAmount: 1n }, price: parsePrice("5.4321"), cryptoAmount: 1_000_000n });
    expect(one).toEqual({
      cryptoAmount: 1_000_000n,
      fiatCentavos: 525n,
      spreadCentavos: 16n,
      networkFeeCentavos: 1n,
      grossCentavos: 543n,
      roundingCentavos: 1n,
    });
  });

  it("accepts exactly min and max, refuses one base unit beyond", () => {
    const a = makeAsset();
    const price = parsePrice("350000");
    expect(computeQuote({ asset: a, price, cryptoAmount: a.minAmount }).cryptoAmount).toBe(a.minAmount);
    expect(computeQuote({ asset: a, price, cryptoAmount: a.maxAmount }).cryptoAmount).toBe(a.maxAmount);
    const small = codeOf(() => computeQuote({ asset: a, price, cryptoAmount: a.minAmount - 1n }));
    expect(small).toEqual({
      code: "AMOUNT_TOO_SMALL",
      details: { asset: "bitcoin:BTC", amount: "0.00009999", min: "0.0001", max: "5", min_brl: "33.86", max_brl: "1693125.00" },
    });
    expect(codeOf(() => computeQuote({ asset: a, price, cryptoAmount: a.maxAmount + 1n })).code).toBe("AMOUNT_TOO_LARGE");
  });

  it("refuses zero and negative amounts", () => {
    const price = parsePrice("350000");
    expect(codeOf(() => computeQuote({ asset: makeAsset(), price, cryptoAmount: 0n })).code).toBe("INVALID_AMOUNT");
    expect(codeOf(() => computeQuote({ asset: makeAsset(), price, cryptoAmount: -1n })).code).toBe("INVALID_AMOUNT");
  });

  it("refuses a quote that would pay nothing", () => {
    const a = makeAsset({ minAmount: 1n });
    expect(codeOf(() => computeQuote({ asset: a, price: parsePrice("350000"), cryptoAmount: 1n })).code).toBe(
      "AMOUNT_TOO_SMALL",
    );
  });
});

describe("computeQuote by BRL amount", () => {
  it("asks for the least crypto that covers the BRL, and pays at least the BRL asked", () => {
    const price = parsePrice("350000");
    const q = computeQuote({ asset: makeAsset(), price, fiatCentavos: parseBrl("1000.00") });
    // 100000 / (350000 × 0.9675) = 0.00295311…, rounded up to the satoshi.
    expect(q.cryptoAmount).toBe(parseUnits("0.00295312", 8));
    expect(q.fiatCentavos).toBe(parseBrl("1000.00"));
    expect(quoteBrl(q.cryptoAmount - 1n, quoteTerms(makeAsset(), price))).toBeLessThan(parseBrl("1000.00"));
  });

  it("accepts exactly the BRL limits and refuses one centavo beyond", () => {
    const a = makeAsset();
    const price = parsePrice("350000");
    const { minCentavos, maxCentavos } = brlLimits(a, price);
    expect(computeQuote({ asset: a, price, fiatCentavos: minCentavos }).cryptoAmount).toBeGreaterThanOrEqual(a.minAmount);
    expect(computeQuote({ asset: a, price, fiatCentavos: maxCentavos }).cryptoAmount).toBeLessThanOrEqual(a.maxAmount);
    const small = codeOf(() => computeQuote({ asset: a, price, fiatCentavos: minCentavos - 1n }));
    expect(small.code).toBe("AMOUNT_TOO_SMALL");
    expect(small.details).toMatchObject({ fiat_amount: "33.85", min_brl: "33.86", min: "0.0001" });
    expect(codeOf(() => computeQuote({ asset: a, price, fiatCentavos: maxCentavos + 1n })).code).toBe("AMOUNT_TOO_LARGE");
  });

  it("refuses zero and negative BRL, and requests with both or neither amount", () => {
    const price = parsePrice("5.4");
    expect(codeOf(() => computeQuote({ asset: usdt, price, fiatCentavos: 0n })).code).toBe("INVALID_AMOUNT");
    expect(codeOf(() => computeQuote({ asset: usdt, price, fiatCentavos: -100n })).code).toBe("INVALID_AMOUNT");
    expect(codeOf(() => computeQuote({ asset: usdt, price })).code).toBe("INVALID_AMOUNT");
    expect(codeOf(() => computeQuote({ asset: usdt, price, fiatCentavos: 100n, cryptoAmount: 1n })).code).toBe("INVALID_AMOUNT");
  });

  it("refuses a zero price", () => {
    expect(codeOf(() => computeQuote({ asset: usdt, price: 0n, cryptoAmount: 10_000_000n })).code).toBe("PRICE_UNAVAILABLE");
  });
});

// Properties over random assets: decimals 0..36, prices from 1e-18 to 1e7 BRL, margins below 100 %.
const market = fc.record({
  asset: fc
    .record({
      decimals: fc.integer({ min: 0, max: 36 }),
      spreadBps: fc.bigInt({ min: 0n, max: 5_000n }),
      networkFeeBps: fc.bigInt({ min: 0n, max: 4_999n }),
    })
    .map((t) => makeAsset({ ...t, minAmount: 1n, maxAmount: 10n ** 90n })),
  price: fc.bigInt({ min: 1n, max: 10n ** 25n }),
});

describe("quote properties", () => {
  it("quoteBrl(cryptoForBrl(x)) >= x, and one base unit less would not cover x", () => {
    fc.assert(
      fc.property(market, fc.bigInt({ min: 1n, max: 10n ** 14n }), ({ asset, price }, x) => {
        const t = quoteTerms(asset, price);
        const c = cryptoForBrl(x, t);
        expect(quoteBrl(c, t)).toBeGreaterThanOrEqual(x);
        expect(quoteBrl(c - 1n, t)).toBeLessThan(x);
      }),
    );
  });

  it("by BRL, the user is paid at least what was asked", () => {
    fc.assert(
      fc.property(market, fc.bigInt({ min: 1n, max: 10n ** 14n }), ({ asset, price }, x) => {
        const q = computeQuote({ asset, price, fiatCentavos: x });
        expect(q.fiatCentavos).toBeGreaterThanOrEqual(x);
      }),
    );
  });

  it("floors in the house's favour and the breakdown adds up", () => {
    fc.assert(
      fc.property(market, fc.bigInt({ min: 1n, max: 10n ** 40n }), ({ asset, price }, amount) => {
        let q;
        try {
          q = computeQuote({ asset, price, cryptoAmount: amount });
        } catch (err) {
          // Only a quote that pays nothing may be refused here.
          expect((err as PonteError).code).toBe("AMOUNT_TOO_SMALL");
          expect(quoteBrl(amount, quoteTerms(asset, price))).toBe(0n);
          return;
        }
        const den = 10n ** BigInt(asset.decimals) * PRICE_SCALE * BPS_SCALE;
        const value = amount * price * 100n;
        const exact = value * (BPS_SCALE - asset.spreadBps - asset.networkFeeBps);
        // fiat is the floor: never above the exact value, less than one centavo below it.
        expect(q.fiatCentavos * den <= exact).toBe(true);
        expect((q.fiatCentavos + 1n) * den > exact).toBe(true);
        expect(q.spreadCentavos * den <= value * asset.spreadBps).toBe(true);
        expect(q.networkFeeCentavos * den <= value * asset.networkFeeBps).toBe(true);
        expect(q.grossCentavos).toBe(q.fiatCentavos + q.spreadCentavos + q.networkFeeCentavos + q.roundingCentavos);
        expect(q.roundingCentavos >= 0n && q.roundingCentavos <= 2n).toBe(true);
      }),
    );
  });

  it("brlLimits are exact: the edges are accepted, one centavo beyond is refused", () => {
    fc.assert(
      fc.property(
        market,
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        ({ asset: base, price }, min, span) => {
          const asset = { ...base, minAmount: min, maxAmount: min + span };
          const { minCentavos, maxCentavos } = brlLimits(asset, price);
          const at = (fiat: bigint) => {
            try {
              return computeQuote({ asset, price, fiatCentavos: fiat }).cryptoAmount;
            } catch (err) {
              return (err as PonteError).code;
            }
          };
          if (minCentavos > 1n) expect(at(minCentavos - 1n)).toBe("AMOUNT_TOO_SMALL");
          expect(at(maxCentavos + 1n)).toBe("AMOUNT_TOO_LARGE");
          // A range narrower than one centavo's worth of crypto may hold no BRL amount at all.
          if (minCentavos > maxCentavos) return;
          expect(typeof at(minCentavos)).toBe("bigint");
          expect(typeof at(maxCentavos)).toBe("bigint");
        },
      ),
    );
  });
});
