import { ChannelCredentials, credentials, Metadata, type CallOptions, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { fromGrpcError, type Logger } from "@ponte/common";
import { agentv1 } from "@ponte/proto";
import { fromWatchBatch } from "./watch-batch.js";
import type {
  AgentIdentity,
  BlockRef,
  ChainFamily,
  CursorState,
  DerivedAddress,
  LeaseGrant,
  Deposit,
  MempoolDeposit,
  PoolStatus,
  ProcessedBlock,
  ReorgNotice,
  SystemWallet,
  TransferAttempt,
  TransferKind,
  TransferOrder,
  TransferReport,
  TransferStatus,
  WatchColumns,
} from "../types.js";

/** One change of the watch set as the stream delivers it. */
export interface WatchMessage {
  add: WatchColumns;
  remove: string[];
  snapshotComplete: boolean;
}

/**
 * One message of the transfer-order stream: an order, or one that could not be read (the
 * consumer reports it FAILED with the reason rather than guessing at it).
 */
export type TransferOrderMessage = { ok: true; order: TransferOrder } | { ok: false; orderId: string; reason: string };

export interface BlocksReport {
  blocks: ProcessedBlock[];
  head: BlockRef;
  finalizedHeight: bigint;
}

/**
 * The coordinator's AgentService as promises of domain types. Every error comes out as a
 * PonteError (fromGrpcError): LEASE_LOST, INVALID_STATE (with details), or a RetryableError
 * when the coordinator is unreachable.
 */
export interface CoordinatorClient {
  register(
    identity: AgentIdentity,
    o: { family: ChainFamily; chainId: string; version: string; systemWallets?: SystemWallet[] },
  ): Promise<LeaseGrant>;
  release(identity: AgentIdentity): Promise<void>;
  getCursor(identity: AgentIdentity): Promise<CursorState>;
  /** The watch stream; iterate it, call cancel() to stop. Errors are converted PonteErrors. */
  watchAddresses(identity: AgentIdentity): { messages: AsyncIterable<WatchMessage>; cancel(): void };
  getAddressPool(identity: AgentIdentity): Promise<PoolStatus>;
  addDepositAddresses(identity: AgentIdentity, addresses: DerivedAddress[]): Promise<PoolStatus>;
  reportBlocks(identity: AgentIdentity, report: BlocksReport): Promise<CursorState>;
  reportReorg(identity: AgentIdentity, reorg: ReorgNotice): Promise<number>;
  /** Unconfirmed deposits seen, and earlier ones replaced or evicted (by tx_ref). */
  reportMempool(identity: AgentIdentity, report: { deposits: MempoolDeposit[]; dropped: string[] }): Promise<number>;
  /** Pending transfer orders (with their recorded attempts), then new ones; cancel() to stop. */
  streamTransferOrders(identity: AgentIdentity): { messages: AsyncIterable<TransferOrderMessage>; cancel(): void };
  /** Resolves once the coordinator stored the report (idempotent on order, attempt, status). */
  reportTransfer(identity: AgentIdentity, report: TransferReport): Promise<number>;
  /** The system wallets' balances read at one block (the coordinator rebalances hot → cold from them). */
  reportWalletBalances(identity: AgentIdentity, report: WalletBalancesReport): Promise<number>;
  close(): void;
}

export interface WalletBalancesReport {
  blockHeight: bigint;
  /** contract "" for the native coin; balance in base units. */
  balances: { address: string; contract: string; balance: bigint }[];
}

const FAMILY: Record<ChainFamily, agentv1.ChainFamily> = {
  evm: agentv1.ChainFamily.CHAIN_FAMILY_EVM,
  utxo: agentv1.ChainFamily.CHAIN_FAMILY_UTXO,
  solana: agentv1.ChainFamily.CHAIN_FAMILY_SOLANA,
};

const UINT32_MAX = 0xffff_ffffn;

export function createCoordinatorClient(o: {
  address: string;
  tls?: boolean;
  deadlineMs?: number;
  logger: Logger;
}): CoordinatorClient {
  const creds: ChannelCredentials = o.tls ? credentials.createSsl() : credentials.createInsecure();
  const client = new agentv1.AgentServiceClient(o.address, creds, {
    // Keepalive lets a long-lived watch stream notice a dead peer; reconnects are ours (backoff).
    "grpc.keepalive_time_ms": 20_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 5_000,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  });
  const deadlineMs = o.deadlineMs ?? 10_000;
  const opts = (): Partial<CallOptions> => ({ deadline: Date.now() + deadlineMs });

  // grpc-js unary calls all share this callback shape; the wrapper keeps each method one line.
  type Unary<Req, Res> = (
    req: Req,
    md: Metadata,
    options: Partial<CallOptions>,
    cb: (err: ServiceError | null, res: Res) => void,
  ) => unknown;
  const call = <Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> =>
    new Promise((resolve, reject) => {
      fn.call(client, req, new Metadata(), opts(), (err, res) => (err ? reject(fromGrpcError(err)) : resolve(res)));
    });

  return {
    async register(identity, r) {
      const res = await call<agentv1.RegisterRequest, agentv1.RegisterResponse>(client.register, {
        identity: toIdentity(identity),
        family: FAMILY[r.family],
        chainId: r.chainId,
        version: r.version,
        systemWallets: (r.systemWallets ?? []).map(toSystemWallet),
      });
      return { granted: res.granted, epoch: res.leaseEpoch, ttlMs: res.leaseTtlMs, holder: res.holderAgentId };
    },
    async release(identity) {
      await call<agentv1.ReleaseRequest, agentv1.ReleaseResponse>(client.release, { identity: toIdentity(identity) });
    },
    async getCursor(identity) {
      return fromCursor(await call<agentv1.GetCursorRequest, agentv1.Cursor>(client.getCursor, { identity: toIdentity(identity) }));
    },
    watchAddresses(identity) {
      const stream: ClientReadableStream<agentv1.WatchUpdate> = client.watchAddresses({ identity: toIdentity(identity) });
      async function* messages(): AsyncGenerator<WatchMessage> {
        try {
          for await (const u of stream as AsyncIterable<agentv1.WatchUpdate>) {
            yield { add: fromWatchBatch(u.add), remove: u.remove, snapshotComplete: u.snapshotComplete };
          }
        } catch (err) {
          throw fromGrpcError(err);
        }
      }
      return { messages: messages(), cancel: () => stream.cancel() };
    },
    async getAddressPool(identity) {
      return fromPool(await call<agentv1.GetAddressPoolRequest, agentv1.AddressPoolStatus>(client.getAddressPool, { identity: toIdentity(identity) }));
    },
    async addDepositAddresses(identity, addresses) {
      const res = await call<agentv1.AddDepositAddressesRequest, agentv1.AddressPoolStatus>(client.addDepositAddresses, {
        identity: toIdentity(identity),
        addresses: addresses.map((a) => ({
          address: a.address,
          derivationIndex: a.index,
          derivationPath: a.path,
          script: a.script ?? "",
        })),
      });
      return fromPool(res);
    },
    async reportBlocks(identity, report) {
      const res = await call<agentv1.ReportBlocksRequest, agentv1.ReportBlocksResponse>(client.reportBlocks, {
        identity: toIdentity(identity),
        blocks: report.blocks.map((b) => toBlockReport(b, report.head, report.finalizedHeight)),
        head: { height: report.head.height, hash: report.head.hash },
        finalizedHeight: report.finalizedHeight,
      });
      return fromCursor(res.cursor);
    },
    async reportReorg(identity, reorg) {
      const res = await call<agentv1.ReorgReport, agentv1.ReportAck>(client.reportReorg, {
        identity: toIdentity(identity),
        commonAncestor: { height: reorg.ancestor.height, hash: reorg.ancestor.hash },
        orphanedTxRefs: reorg.orphanedTxRefs,
        depth: reorg.depth,
      });
      return res.accepted;
    },
    async reportMempool(identity, report) {
      const res = await call<agentv1.MempoolReport, agentv1.ReportAck>(client.reportMempool, {
        identity: toIdentity(identity),
        observations: report.deposits.map((d) =>
          toObservation(d, { status: agentv1.ObservationStatus.OBSERVATION_STATUS_SEEN, confirmations: 0, rbf: d.rbf }),
        ),
        droppedTxRefs: report.dropped,
      });
      return res.accepted;
    },
    streamTransferOrders(identity) {
      const stream: ClientReadableStream<agentv1.TransferOrder> = client.streamTransferOrders({ identity: toIdentity(identity) });
      async function* messages(): AsyncGenerator<TransferOrderMessage> {
        try {
          for await (const o of stream as AsyncIterable<agentv1.TransferOrder>) yield fromTransferOrder(o);
        } catch (err) {
          throw fromGrpcError(err);
        }
      }
      return { messages: messages(), cancel: () => stream.cancel() };
    },
    async reportTransfer(identity, report) {
      const res = await call<agentv1.TransferReport, agentv1.ReportAck>(client.reportTransfer, {
        identity: toIdentity(identity),
        orderId: report.orderId,
        attempt: toAttempt(report.attempt),
        reason: report.reason ?? "",
        blockHeight: report.blockHeight ?? 0n,
      });
      return res.accepted;
    },
    async reportWalletBalances(identity, report) {
      const res = await call<agentv1.WalletBalancesReport, agentv1.ReportAck>(client.reportWalletBalances, {
        identity: toIdentity(identity),
        blockHeight: report.blockHeight,
        balances: report.balances.map((b) => ({ address: b.address, contract: b.contract, balance: b.balance.toString() })),
      });
      return res.accepted;
    },
    close() {
      client.close();
    },
  };
}

const toSystemWallet = (w: SystemWallet): agentv1.SystemWallet => ({
  kind: w.kind,
  address: w.address,
  derivationPath: w.derivationPath ?? "",
  keyRef: w.keyRef ?? "",
  ceiling: w.ceiling === null ? "" : w.ceiling.toString(),
});

const KIND: Record<TransferKind, agentv1.TransferKind> = {
  SWEEP: agentv1.TransferKind.TRANSFER_KIND_SWEEP,
  REFUND: agentv1.TransferKind.TRANSFER_KIND_REFUND,
  CUSTODIAL_SELL: agentv1.TransferKind.TRANSFER_KIND_CUSTODIAL_SELL,
  REBALANCE: agentv1.TransferKind.TRANSFER_KIND_REBALANCE,
  GAS_TOPUP: agentv1.TransferKind.TRANSFER_KIND_GAS_TOPUP,
};
const STATUS: Record<TransferStatus, agentv1.TransferStatus> = {
  PENDING: agentv1.TransferStatus.TRANSFER_STATUS_PENDING,
  SIGNED: agentv1.TransferStatus.TRANSFER_STATUS_SIGNED,
  BROADCAST: agentv1.TransferStatus.TRANSFER_STATUS_BROADCAST,
  CONFIRMED: agentv1.TransferStatus.TRANSFER_STATUS_CONFIRMED,
  FAILED: agentv1.TransferStatus.TRANSFER_STATUS_FAILED,
  SKIPPED: agentv1.TransferStatus.TRANSFER_STATUS_SKIPPED,
};
const invert = <K extends string, V>(m: Record<K, V>) => new Map<V, K>(Object.entries(m).map(([k, v]) => [v as V, k as K]));
const KIND_OF = invert(KIND);
const STATUS_OF = invert(STATUS);

export const toAttempt = (a: TransferAttempt): agentv1.TransferAttempt => ({
  attempt: a.attempt,
  txHash: a.txHash,
  rawTx: a.rawTx,
  nonce: a.nonce === null ? "" : a.nonce.toString(),
  fee: a.fee.toString(),
  status: STATUS[a.status],
});

class MalformedOrder extends Error {}
const DECIMAL = /^\d{1,78}$/;
const need = <T>(v: T | undefined, what: string): T => {
  if (v === undefined) throw new MalformedOrder(what);
  return v;
};
const baseUnits = (s: string, field: string): bigint => {
  if (!DECIMAL.test(s)) throw new MalformedOrder(`${field} must be a decimal string of base units`);
  return BigInt(s);
};

/** Proto → domain at the edge; anything unreadable makes the whole order unreadable. */
export function fromTransferOrder(o: agentv1.TransferOrder): TransferOrderMessage {
  try {
    if (!o.orderId) throw new MalformedOrder("order_id is empty");
    const attempts = o.attempts.map((a, i): TransferAttempt => ({
      attempt: a.attempt,
      txHash: a.txHash,
      rawTx: a.rawTx,
      nonce: a.nonce === "" ? null : baseUnits(a.nonce, `attempts.${i}.nonce`),
      fee: a.fee === "" ? 0n : baseUnits(a.fee, `attempts.${i}.fee`),
      status: need(STATUS_OF.get(a.status), `attempts.${i}.status is unknown`),
    }));
    return {
      ok: true,
      order: {
        orderId: o.orderId,
        kind: need(KIND_OF.get(o.kind), `kind ${o.kind} is unknown`),
        tradeId: o.tradeId === "" ? null : o.tradeId,
        fromAddress: o.fromAddress,
        fromDerivationIndex: o.fromDerivationIndex,
        toAddress: o.toAddress,
        contract: o.contract === "" ? null : o.contract,
        amount: baseUnits(o.amount, "amount"),
        deductFee: o.deductFee,
        sourceTxRefs: o.sourceTxRefs,
        attempts: attempts.sort((a, b) => a.attempt - b.attempt),
        dependsOn: o.dependsOnOrderId === "" ? null : o.dependsOnOrderId,
        status: o.status === agentv1.TransferStatus.TRANSFER_STATUS_UNSPECIFIED ? "PENDING" : need(STATUS_OF.get(o.status), `status ${o.status} is unknown`),
        maxFee: o.maxFee === "" ? null : baseUnits(o.maxFee, "max_fee"),
      },
    };
  } catch (err) {
    if (err instanceof MalformedOrder) return { ok: false, orderId: o.orderId, reason: `malformed order: ${err.message}` };
    throw err;
  }
}

const toIdentity = (i: AgentIdentity): agentv1.AgentIdentity => ({
  network: i.network,
  agentId: i.agentId,
  leaseEpoch: i.leaseEpoch,
});

function fromCursor(c: agentv1.Cursor | undefined): CursorState {
  if (!c || !c.hasCursor || !c.block) return { block: null, finalizedHeight: c?.finalizedHeight ?? 0n };
  return { block: { height: c.block.height, hash: c.block.hash }, finalizedHeight: c.finalizedHeight };
}

const fromPool = (p: agentv1.AddressPoolStatus): PoolStatus => ({
  available: p.available,
  nextIndex: p.nextIndex,
  lowWater: p.lowWater,
  target: p.target,
});

// No Date per address: a snapshot carries a million of them (bench/README.md, B8).

/**
 * Deposits go out as SEEN, or CONFIRMED when their block is already at or below the finalized
 * height (catch-up); the coordinator decides finality from finalized_height either way.
 */
/** A deposit as the coordinator's observation; `block`: where it was mined (none: in the mempool). */
function toObservation(
  d: Deposit,
  o: { status: agentv1.ObservationStatus; confirmations: number; rbf: boolean; block?: { height: bigint; hash: string } },
): agentv1.Observation {
  return {
    txRef: d.txRef,
    txHash: d.txHash,
    address: d.address,
    contract: d.contract ?? "",
    amount: d.amount.toString(),
    kind: agentv1.ObservationKind.OBSERVATION_KIND_DEPOSIT,
    status: o.status,
    confirmations: o.confirmations,
    commitment: agentv1.Commitment.COMMITMENT_UNSPECIFIED,
    rbfSignaled: o.rbf,
    fromAddress: d.from ?? "",
    transferOrderId: "",
    blockHeight: o.block?.height ?? 0n,
    blockHash: o.block?.hash ?? "",
  };
}

export function toBlockReport(b: ProcessedBlock, head: BlockRef, finalizedHeight: bigint): agentv1.BlockReport {
  const confirmations = head.height >= b.height ? head.height - b.height + 1n : 0n;
  const final = b.height <= finalizedHeight;
  return {
    height: b.height,
    hash: b.hash,
    parentHash: b.parentHash,
    timeUnix: b.time,
    parentHeight: b.parentHeight ?? (b.height > 0n ? b.height - 1n : 0n),
    observations: b.deposits.map((d) =>
      toObservation(d, {
        status: final ? agentv1.ObservationStatus.OBSERVATION_STATUS_CONFIRMED : agentv1.ObservationStatus.OBSERVATION_STATUS_SEEN,
        confirmations: Number(confirmations > UINT32_MAX ? UINT32_MAX : confirmations),
        rbf: false,
        block: b,
      }),
    ),
  };
}
