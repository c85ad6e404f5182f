// The contract between the quote subsystem and the rest of the coordinator.
// Amounts: bigint base units; BRL: bigint centavos; prices: fixed-point bigint (PRICE_DECIMALS).

export type ChainFamily = "evm" | "utxo" | "solana";

export interface Asset {
  /** `${network}:${symbol}`, e.g. "polygon:USDT" */
  id: string;
  symbol: string;
  network: string;
  family: ChainFamily;
  name: string;
  decimals: number;
  /** token contract (EVM, lowercase 0x…) or mint (Solana); undefined for the native asset */
  contract?: string;
  minAmount: bigint;
  maxAmount: bigint;
  /** confirmations needed, and a higher count above a BRL amount (Bitcoin 3 / 6 above a threshold) */
  confirmations: number;
  confirmationsHigh?: { aboveCentavos: bigint; confirmations: number };
  enabled: boolean;
  spreadBps: bigint;
  networkFeeBps: bigint;
  /** key the price sources know this asset by, e.g. "BTC", "USDT" */
  priceKey: string;
}

export interface AssetRegistry {
  list(): Asset[];
  /** Throws PonteError ASSET_NOT_FOUND (unknown pair) or ASSET_DISABLED. */
  get(symbol: string, network: string): Asset;
  /** Enabled or not; undefined when unknown. */
  find(symbol: string, network: string): Asset | undefined;
  byNetwork(network: string): Asset[];
}

export interface PriceSource {
  /** Reference BRL price per whole unit. Throws PonteError PRICE_UNAVAILABLE (stale, disagreeing, unreachable). */
  price(asset: Asset): Promise<bigint>;
  close?(): Promise<void> | void;
}

export interface QuoteRequest {
  asset: Asset;
  price: bigint;
  cryptoAmount?: bigint;
  fiatCentavos?: bigint;
}

export interface QuoteFigures {
  cryptoAmount: bigint;
  fiatCentavos: bigint;
  spreadCentavos: bigint;
  networkFeeCentavos: bigint;
}
