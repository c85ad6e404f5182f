// Domain types of the agent runtime. Proto types stay inside client/ (converted at the edge).

export type ChainFamily = "evm" | "utxo" | "solana";

export interface BlockRef {
  height: bigint;
  hash: string;
}

/** Where the coordinator says the network's stored chain ends. */
export interface CursorState {
  /** null: nothing stored yet, start from the configured start height. */
  block: BlockRef | null;
  finalizedHeight: bigint;
}

export interface Deposit {
  /** Natural key within the network: "txhash:native", "txhash:logIndex", "txid:vout", … */
  txRef: string;
  txHash: string;
  /** The watched address credited, as the watch set spells it. */
  address: string;
  /** Token contract or mint; null for the native asset. */
  contract: string | null;
  /** Base units. */
  amount: bigint;
  from: string | null;
}

export interface ProcessedBlock {
  height: bigint;
  hash: string;
  parentHash: string;
  /** Solana: the parent slot (slots can be skipped); elsewhere height - 1 (the default). */
  parentHeight?: bigint;
  /** Block time, unix seconds. */
  time: bigint;
  deposits: Deposit[];
}

export interface ReorgNotice {
  /** The highest block both chains share; the coordinator rewinds its cursor here. */
  ancestor: BlockRef;
  /** Deposits the agent reported above the ancestor. */
  orphanedTxRefs: string[];
  /** Blocks replaced: old tip height - ancestor height. */
  depth: number;
}

export interface WatchEntry {
  address: string;
  tradeId: string;
  /** Expected token contract or mint; null when the trade expects the native asset. */
  contract: string | null;
  watchUntil: Date | null;
  derivationIndex: number;
}

export interface DerivedAddress {
  index: number;
  address: string;
  path: string;
  /** UTXO scriptPubKey hex; absent elsewhere. */
  script?: string;
}

export interface PoolStatus {
  available: number;
  /** As the coordinator reports it; -1 when no address was ever stored. */
  nextIndex: bigint;
  lowWater: number;
  target: number;
}

export interface LeaseGrant {
  granted: boolean;
  epoch: bigint;
  ttlMs: number;
  holder: string;
}

export interface AgentIdentity {
  network: string;
  agentId: string;
  leaseEpoch: bigint;
}
