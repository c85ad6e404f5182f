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

/** An unconfirmed deposit (UTXO mempool): replaceable while it signals BIP125 (or inherits it). */
export interface MempoolDeposit extends Deposit {
  rbf: boolean;
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

/** A watched address. No trade id: the coordinator maps an address to its trade. */
export interface WatchEntry {
  address: string;
  /** Expected token contract or mint; null when the trade expects the native asset. */
  contract: string | null;
  watchUntil: Date | null;
  derivationIndex: number;
}

/**
 * Watched addresses as the watch stream carries them (agent.proto WatchBatch), in columns: entry i
 * of each list belongs to address[i]; no object or Date per address.
 */
export interface WatchColumns {
  address: string[];
  /** The batch's distinct token contracts or mints. */
  contracts: string[];
  /** Per address: index into `contracts`; -1 for the native asset. */
  contract: number[];
  /** Per address: epoch ms after which the agent may stop watching (NaN: none). */
  watchUntilMs: number[];
  derivationIndex: number[];
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

/** One of the network's own wallets, as sent at registration (a key reference, never a key). */
export interface SystemWallet {
  kind: "hot" | "cold";
  address: string;
  /** null for a cold wallet (address only). */
  derivationPath: string | null;
  /** Where the agent finds the key, e.g. "vault:secret/ponte/agents/evm#seed"; null for cold. */
  keyRef: string | null;
  /** Hot only: native base units above which the coordinator moves the excess to cold. */
  ceiling: bigint | null;
}

export type TransferKind = "SWEEP" | "REFUND" | "CUSTODIAL_SELL" | "REBALANCE" | "GAS_TOPUP";
export type TransferStatus = "PENDING" | "SIGNED" | "BROADCAST" | "CONFIRMED" | "FAILED" | "SKIPPED";

export const FINAL_TRANSFER_STATUSES: ReadonlySet<TransferStatus> = new Set(["CONFIRMED", "FAILED", "SKIPPED"]);

/**
 * One signed transaction of an order (or, with attempt 0 and an empty txHash, a report that
 * needed no transaction: a refusal, a skip, a gas top-up that was already covered).
 */
export interface TransferAttempt {
  attempt: number;
  txHash: string;
  /** Hex of the signed transaction, recorded (SIGNED) before it is broadcast. */
  rawTx: string;
  /** Account-based chains; null elsewhere and for attempt 0. */
  nonce: bigint | null;
  /** Native base units: the most it can cost while pending, what it cost once mined. */
  fee: bigint;
  status: TransferStatus;
}

export interface TransferOrder {
  orderId: string;
  kind: TransferKind;
  tradeId: string | null;
  fromAddress: string;
  fromDerivationIndex: number;
  toAddress: string;
  /** Token contract or mint; null for the native asset. */
  contract: string | null;
  /** Base units; "0" for a gas top-up (the agent computes what to send). */
  amount: bigint;
  deductFee: boolean;
  sourceTxRefs: string[];
  /** Attempts the coordinator recorded: a restarted agent resumes from these. */
  attempts: TransferAttempt[];
  dependsOn: string | null;
  status: TransferStatus;
  /** SWEEP only: skip when the fee would exceed this (native base units); null = no limit. */
  maxFee: bigint | null;
}

export interface TransferReport {
  orderId: string;
  attempt: TransferAttempt;
  /** Why a transfer failed or was skipped (or how a no-transaction report came about). */
  reason?: string;
  /** The block of the mined transaction, for CONFIRMED and FAILED after mining. */
  blockHeight?: bigint;
}
