import {
  BPS_SCALE,
  PRICE_SCALE,
  PonteError,
  cryptoForBrl,
  formatBrl,
  formatUnits,
  grossBrl,
  quoteBrl,
  type QuoteTerms,
} from "@ponte/common";
import type { Asset, QuoteFigures, QuoteRequest } from "./types.js";

/** QuoteFigures plus the two figures that make the breakdown add up. */
export interface QuoteBreakdown extends QuoteFigures {
  /** floor(amount × price) in centavos, before spread and fee. */
  grossCentavos: bigint;
  /**
   * Centavo fractions lost by flooring each part separately, 0 to 2: gross = fiat + spread + fee + rounding.
   * The house keeps it; it is shown apart so the displayed spread and fee are never overstated.
   */
  roundingCentavos: bigint;
}

export const quoteTerms = (asset: Asset, price: bigint): QuoteTerms => ({
  decimals: asset.decimals,
  price,
  spreadBps: asset.spreadBps,
  networkFeeBps: asset.networkFeeBps,
});

/**
 * The BRL limits equivalent to the asset's crypto limits at a price: the smallest BRL request whose
 * crypto amount reaches minAmount (q(min − 1) + 1, as cryptoForBrl is the least amount whose quote
 * covers the request), and the largest BRL request that stays within maxAmount (q(max)).
 */
export function brlLimits(asset: Asset, price: bigint): { minCentavos: bigint; maxCentavos: bigint } {
  const t = quoteTerms(asset, price);
  const minCentavos = asset.minAmount > 1n ? quoteBrl(asset.minAmount - 1n, t) + 1n : 1n;
  return { minCentavos, maxCentavos: quoteBrl(asset.maxAmount, t) };
}

function limitDetails(asset: Asset, price: bigint, extra: Record<string, unknown>): Record<string, unknown> {
  const { minCentavos, maxCentavos } = brlLimits(asset, price);
  return {
    asset: asset.id,
    ...extra,
    min: formatUnits(asset.minAmount, asset.decimals),
    max: formatUnits(asset.maxAmount, asset.decimals),
    min_brl: formatBrl(minCentavos),
    max_brl: formatBrl(maxCentavos),
  };
}

/**
 * Prices a sale of `asset` at the reference `price`, either by crypto amount or by BRL wanted.
 * - By crypto: fiat = floor(amount × price × (1 − spread − fee)).
 * - By BRL: crypto = the least amount whose quote covers the BRL asked (rounded up, so the user
 *   sends enough), then fiat = quote of that amount, which is >= the BRL asked.
 * Spread and fee are each floored from the gross; what flooring leaves over is `roundingCentavos`.
 * Limits are checked on the crypto amount; errors carry min/max in crypto and in BRL.
 */
export function computeQuote(req: QuoteRequest): QuoteBreakdown {
  const { asset, price } = req;
  if (price <= 0n) throw new PonteError("PRICE_UNAVAILABLE", `No usable price for ${asset.id}`, { asset: asset.id });
  const byCrypto = req.cryptoAmount !== undefined;
  if (byCrypto === (req.fiatCentavos !== undefined))
    throw new PonteError("INVALID_AMOUNT", "Give exactly one of the crypto amount and the BRL amount", { asset: asset.id });

  const t = quoteTerms(asset, price);
  let cryptoAmount: bigint;
  let requested: Record<string, unknown>;
  if (byCrypto) {
    cryptoAmount = req.cryptoAmount!;
    requested = { amount: formatUnits(cryptoAmount, asset.decimals) };
    if (cryptoAmount <= 0n) throw new PonteError("INVALID_AMOUNT", "The amount must be greater than zero", { asset: asset.id, ...requested });
  } else {
    const fiat = req.fiatCentavos!;
    requested = { fiat_amount: formatBrl(fiat) };
    if (fiat <= 0n) throw new PonteError("INVALID_AMOUNT", "The BRL amount must be greater than zero", { asset: asset.id, ...requested });
    cryptoAmount = cryptoForBrl(fiat, t);
  }

  if (cryptoAmount < asset.minAmount)
    throw new PonteError("AMOUNT_TOO_SMALL", `Below the minimum for ${asset.symbol} on ${asset.network}`, limitDetails(asset, price, requested));
  if (cryptoAmount > asset.maxAmount)
    throw new PonteError("AMOUNT_TOO_LARGE", `Above the maximum for ${asset.symbol} on ${asset.network}`, limitDetails(asset, price, requested));

  const fiatCentavos = quoteBrl(cryptoAmount, t);
  // A quote that pays nothing is refused even above minAmount (a tiny price or a tiny minimum).
  if (fiatCentavos <= 0n)
    throw new PonteError("AMOUNT_TOO_SMALL", `Below the minimum for ${asset.symbol} on ${asset.network}`, limitDetails(asset, price, requested));

  const grossCentavos = grossBrl(cryptoAmount, t);
  const partOf = (bps: bigint) =>
    (cryptoAmount * price * 100n * bps) / (10n ** BigInt(asset.decimals) * PRICE_SCALE * BPS_SCALE);
  const spreadCentavos = partOf(asset.spreadBps);
  const networkFeeCentavos = partOf(asset.networkFeeBps);
  return {
    cryptoAmount,
    fiatCentavos,
    spreadCentavos,
    networkFeeCentavos,
    grossCentavos,
    roundingCentavos: grossCentavos - fiatCentavos - spreadCentavos - networkFeeCentavos,
  };
}
