export type * from "./types.js";
export {
  applyContractOverrides,
  confirmationsFor,
  loadAssetRegistry,
  parseAssetRegistry,
  parseContractOverrides,
} from "./registry.js";
export {
  HttpTickerOptionsSchema,
  TickerConfigSchema,
  createHttpTickerPriceSource,
  createStaticPriceSource,
  jsonPath,
  median,
  parseJsonNumbersAsText,
  readTickerPrice,
  type HttpTickerOptions,
  type StaticPriceSource,
  type TickerConfig,
} from "./price.js";
export { brlLimits, computeQuote, quoteTerms, type QuoteBreakdown } from "./compute.js";
