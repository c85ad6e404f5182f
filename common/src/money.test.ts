import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PonteError } from "./errors.js";
import { cryptoForBrl, formatBrl, formatUnits, parseBrl, parsePrice, parseUnits, quoteBrl, settle, type QuoteTerms } from "./money.js";

const usdt: QuoteTerms = { decimals: 6, price: parsePrice("5.40"), spreadBps: 300n, networkFeeBps: 25n };
const tol = { underBps: 50n, overBps: 50n };

describe("parseUnits / formatUnits", () => {
  it("parses exactly and refuses more decimals than the asset has (no rounding)", () => {
    expect(parseUnits("100.5", 6)).toBe(100_500_000n);
    expect(parseUnits("0.000001", 6)).toBe(1n);
    expect(parseUnits("1", 18)).toBe(10n ** 18n);
    expect(() => parseUnits("0.0000001", 6)).toThrow(PonteError);
    for (const bad of ["", "-1", "1e5", "0x10", "1.", ".5", " 1", "1,5", "NaN"]) {
      expect(() => parseUnits(bad, 6), bad).toThrow(PonteError);
    }
    expect(() => parseUnits("9".repeat(73), 6)).toThrow(/too large/);
  });

  it("formats without trailing zeros and round-trips", () => {
    expect(formatUnits(100_500_000n, 6)).toBe("100.5");
    expect(formatUnits(1n, 18)).toBe("0.000000000000000001");
    expect(formatUnits(0n, 8)).toBe("0");
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), fc.integer({ min: 0, max: 30 }), (v, d) => parseUnits(formatUnits(v, d), d) === v));
  });

  it("BRL is two decimals, always printed with both", () => {
    expect(parseBrl("543.21")).toBe(54_321n);
    expect(formatBrl(54_320n)).toBe("543.20");
    expect(formatBrl(5n)).toBe("0.05");
    expect(() => parseBrl("1.001")).toThrow(PonteError);
  });
});

describe("quotes and settlement", () => {
  it("floors BRL to the centavo in the house's favour", () => {
    // 100.5 × 5.40 × 0.9675 = 525.06225
    expect(quoteBrl(100_500_000n, usdt)).toBe(52_506n);
    expect(quoteBrl(0n, usdt)).toBe(0n);
    expect(quoteBrl(1n, usdt)).toBe(0n); // 0.0000052245 BRL
  });

  it("the BRL-side inverse always pays at least what was asked, and one unit less does not", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 12n }), (centavos) => {
        const c = cryptoForBrl(centavos, usdt);
        return quoteBrl(c, usdt) >= centavos && quoteBrl(c - 1n, usdt) < centavos;
      }),
    );
  });

  it("settles at the tolerance boundaries", () => {
    const quoted = 100_000_000n; // 100 USDT; band [99.5, 100.5]
    expect(settle(99_499_999n, quoted, usdt, tol)).toEqual({ kind: "UNDERPAID", payCentavos: 0n, refundAmount: 99_499_999n });
    expect(settle(99_500_000n, quoted, usdt, tol)).toMatchObject({ kind: "PAY", payCentavos: quoteBrl(99_500_000n, usdt) });
    expect(settle(100_500_000n, quoted, usdt, tol)).toMatchObject({ kind: "PAY", payCentavos: quoteBrl(100_500_000n, usdt) });
    expect(settle(100_500_001n, quoted, usdt, tol)).toEqual({
      kind: "PAY_AND_REFUND_EXCESS",
      payCentavos: quoteBrl(quoted, usdt),
      refundAmount: 500_001n,
    });
    expect(settle(quoted, quoted, usdt, { underBps: 0n, overBps: 0n })).toMatchObject({ kind: "PAY" });
    expect(settle(quoted - 1n, quoted, usdt, { underBps: 0n, overBps: 0n }).kind).toBe("UNDERPAID");
  });
});
