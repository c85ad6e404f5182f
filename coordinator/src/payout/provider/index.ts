// PIX payout providers behind one interface. Adding one (Woovi/OpenPix, Efí) means a folder with
// a create…Provider factory and a case below; the payout state machine only sees PixProvider.
import type { Logger } from "@ponte/common";
import { createStarkbankProvider, type StarkbankProviderOptions } from "./starkbank/index.js";
import type { PixProvider } from "./types.js";

export * from "./types.js";
export * from "./errors.js";
export { matchesMaskedTaxId, isMaskedTaxId } from "./holder.js";
export { createStarkbankProvider, starkbankOptionsFromEnv, StarkbankEnv, ourKeyTag } from "./starkbank/index.js";
export type { StarkbankProviderOptions } from "./starkbank/index.js";

export type PixProviderConfig = { name: "starkbank" } & StarkbankProviderOptions;

export function createPixProvider(
  common: { logger: Logger; shutdown?: { signal: AbortSignal } },
  config: PixProviderConfig,
): PixProvider {
  switch (config.name) {
    case "starkbank":
      return createStarkbankProvider(common, config);
  }
}
