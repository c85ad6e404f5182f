import type { Logger } from "@ponte/common";
import type { CoordinatorConfig } from "../config.js";
import { createHttpTickerPriceSource, createStaticPriceSource, type TickerConfig } from "./price.js";
import type { PriceSource } from "./types.js";

/** The price source the configuration asks for (PRICE_SOURCE=static|http). */
export function createPriceSource(config: CoordinatorConfig, logger: Logger, signal: AbortSignal): PriceSource {
  if (config.PRICE_SOURCE === "static") return createStaticPriceSource(config.STATIC_PRICES ?? {});
  return createHttpTickerPriceSource({
    tickers: (config.PRICE_TICKERS ?? []) as TickerConfig[],
    minSources: config.PRICE_MIN_SOURCES,
    maxAgeMs: config.PRICE_MAX_AGE_MS,
    maxDeviationPercent: config.PRICE_MAX_DEVIATION_PERCENT,
    logger,
    signal,
  });
}
