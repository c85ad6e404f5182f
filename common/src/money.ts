import { PonteError } from "./errors.js";

// Crypto amounts are bigint base units; BRL is bigint centavos; prices are fixed-point
// bigints with PRICE_DECIMALS places (BRL per whole unit). No floats anywhere.
export const PRICE_DECIMALS = 18;
export const PRICE_SCALE = 10n ** BigInt(PRICE_DECIMALS);
export const BPS_SCALE = 10_000n;
/** Larger than any amount a uint256 can carry; anything above is rejected before arithmetic. */
const MAX_INPUT_DIGITS = 78;

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Parses a human decimal ("100.5") into base units; refuses more decimals than the asset has. */
export function parseUnits(value: string, decimals: number, field = "amount"): bigint {
  const m = DECIMAL.exec(value);
  if (!m) throw new PonteError("INVALID_AMOUNT", `${field} must be a decimal string like "12.34"`, { field, value: clip(value) });
  const whole = m[1]!;
  const frac = m[2] ?? "";
  if (frac.length > decimals)
    throw new PonteError("INVALID_AMOUNT", `${field} has more than ${decimals} decimal places`, { field, decimals });
  if (whole.replace(/^0+/, "").length + decimals > MAX_INPUT_DIGITS)
    throw new PonteError("INVALID_AMOUNT", `${field} is too large`, { field });
  return BigInt(whole + frac.padEnd(decimals, "0"));
}

/** Formats base units as a human decimal, without trailing zeros ("100.5", "0.000001", "3"). */
export function formatUnits(value: bigint, decimals: number): string {
  const neg = value < 0n;
  const abs = neg ? -value : value;
  const s = abs.toString().padStart(decimals + 1, "0");
  const whole = s.slice(0, s.length - decimals);
  const frac = s.slice(s.length - decimals).replace(/0+$/, "");
  return (neg ? "-" : "") + whole + (frac ? `.${frac}` : "");
}

/** BRL decimal ("543.21") → centavos. At most two decimals. */
export const parseBrl = (value: string, field = "fiat_amount"): bigint => parseUnits(value, 2, field);

/** Centavos → BRL decimal with exactly two places ("543.20"). */
export function formatBrl(centavos: bigint): string {
  const neg = centavos < 0n;
  const abs = neg ? -centavos : centavos;
  const s = abs.toString().padStart(3, "0");
  return `${neg ? "-" : ""}${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** Price (BRL per whole unit, decimal string) → fixed-point bigint with PRICE_DECIMALS places. */
export const parsePrice = (value: string): bigint => parseUnits(value, PRICE_DECIMALS, "price");
export const formatPrice = (price: bigint): string => formatUnits(price, PRICE_DECIMALS);

/** Basis points from a decimal percentage string ("3" → 300n, "0.25" → 25n). */
export function percentToBps(value: string): bigint {
  return parseUnits(value, 2, "percent");
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

export interface QuoteTerms {
  decimals: number;
  price: bigint; // fixed-point, PRICE_DECIMALS
  spreadBps: bigint;
  networkFeeBps: bigint;
}

/** Denominator shared by the quote formulas: base units × price scale × bps scale, per centavo. */
const denominator = (t: QuoteTerms): bigint => 10n ** BigInt(t.decimals) * PRICE_SCALE * BPS_SCALE;
const keptBps = (t: QuoteTerms): bigint => BPS_SCALE - t.spreadBps - t.networkFeeBps;

/**
 * What the seller receives for `amount` base units: floor(amount × price × (1 − spread − fee)) in
 * centavos. Floored: any fraction of a centavo stays with the house (DESIGN.md §5).
 */
export function quoteBrl(amount: bigint, t: QuoteTerms): bigint {
  if (amount < 0n) throw new RangeError("amount must not be negative");
  return (amount * t.price * 100n * keptBps(t)) / denominator(t);
}

/** Gross value before spread and fee, floored (for display of the spread and fee in centavos). */
export function grossBrl(amount: bigint, t: QuoteTerms): bigint {
  return (amount * t.price * 100n * BPS_SCALE) / denominator(t);
}

/**
 * The smallest crypto amount whose quote is at least `centavos`: ceil of the inverse formula.
 * quoteBrl(cryptoForBrl(x)) >= x always holds; the result differs from x by less than one base
 * unit's worth.
 */
export function cryptoForBrl(centavos: bigint, t: QuoteTerms): bigint {
  const perUnit = t.price * 100n * keptBps(t);
  if (perUnit <= 0n) throw new RangeError("price and margins leave nothing to pay");
  return ceilDiv(centavos * denominator(t), perUnit);
}

/**
 * Payout for a received amount at a trade's locked terms, and what to do with the difference.
 * - received below quoted × (1 − underBps): UNDERPAID, refund the whole deposit, pay nothing.
 * - within [quoted × (1 − underBps), quoted × (1 + overBps)]: pay floor(received × rate).
 * - above: pay the quoted BRL and refund the excess (received − quoted).
 * Tolerance bounds are computed in base units and rounded towards the quoted amount, so the
 * band is never wider than configured.
 */
export type Settlement =
  | { kind: "PAY"; payCentavos: bigint; refundAmount: 0n }
  | { kind: "PAY_AND_REFUND_EXCESS"; payCentavos: bigint; refundAmount: bigint }
  | { kind: "UNDERPAID"; payCentavos: 0n; refundAmount: bigint };

export interface Tolerance {
  underBps: bigint;
  overBps: bigint;
}

export function settle(received: bigint, quoted: bigint, terms: QuoteTerms, tol: Tolerance): Settlement {
  const low = ceilDiv(quoted * (BPS_SCALE - tol.underBps), BPS_SCALE);
  const high = (quoted * (BPS_SCALE + tol.overBps)) / BPS_SCALE;
  if (received < low) return { kind: "UNDERPAID", payCentavos: 0n, refundAmount: received };
  if (received <= high) return { kind: "PAY", payCentavos: quoteBrl(received, terms), refundAmount: 0n };
  return { kind: "PAY_AND_REFUND_EXCESS", payCentavos: quoteBrl(quoted, terms), refundAmount: received - quoted };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
