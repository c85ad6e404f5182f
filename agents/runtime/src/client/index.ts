import { ChannelCredentials, credentials, Metadata, type CallOptions, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { fromGrpcError, type Logger } from "@ponte/common";
import { agentv1 } from "@ponte/proto";
import type {
  AgentIdentity,
  BlockRef,
  ChainFamily,
  CursorState,
  DerivedAddress,
  LeaseGrant,
  PoolStatus,
  ProcessedBlock,
  ReorgNotice,
  WatchEntry,
} from "../types.js";

/** One change of the watch set as the stream delivers it. */
export interface WatchMessage {
  upsert: WatchEntry[];
  remove: string[];
  snapshotComplete: boolean;
}

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
  register(identity: AgentIdentity, o: { family: ChainFamily; chainId: string; version: string }): Promise<LeaseGrant>;
  release(identity: AgentIdentity): Promise<void>;
  getCursor(identity: AgentIdentity): Promise<CursorState>;
  /** The watch stream; iterate it, call cancel() to stop. Errors are converted PonteErrors. */
  watchAddresses(identity: AgentIdentity): { messages: AsyncIterable<WatchMessage>; cancel(): void };
  getAddressPool(identity: AgentIdentity): Promise<PoolStatus>;
  addDepositAddresses(identity: AgentIdentity, addresses: DerivedAddress[]): Promise<PoolStatus>;
  reportBlocks(identity: AgentIdentity, report: BlocksReport): Promise<CursorState>;
  reportReorg(identity: AgentIdentity, reorg: ReorgNotice): Promise<number>;
  close(): void;
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
            yield { upsert: u.upsert.map(fromWatched), remove: u.remove, snapshotComplete: u.snapshotComplete };
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
    close() {
      client.close();
    },
  };
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

function fromWatched(w: agentv1.WatchedAddress): WatchEntry {
  const until = w.watchUntil ? new Date(w.watchUntil) : null;
  return {
    address: w.address,
    tradeId: w.tradeId,
    contract: w.contract === "" ? null : w.contract,
    watchUntil: until && !Number.isNaN(until.getTime()) ? until : null,
    derivationIndex: w.derivationIndex,
  };
}

/**
 * Deposits go out as SEEN, or CONFIRMED when their block is already at or below the finalized
 * height (catch-up); the coordinator decides finality from finalized_height either way.
 */
export function toBlockReport(b: ProcessedBlock, head: BlockRef, finalizedHeight: bigint): agentv1.BlockReport {
  const confirmations = head.height >= b.height ? head.height - b.height + 1n : 0n;
  const final = b.height <= finalizedHeight;
  return {
    height: b.height,
    hash: b.hash,
    parentHash: b.parentHash,
    timeUnix: b.time,
    parentHeight: b.parentHeight ?? (b.height > 0n ? b.height - 1n : 0n),
    observations: b.deposits.map((d) => ({
      txRef: d.txRef,
      txHash: d.txHash,
      address: d.address,
      contract: d.contract ?? "",
      amount: d.amount.toString(),
      kind: agentv1.ObservationKind.OBSERVATION_KIND_DEPOSIT,
      status: final ? agentv1.ObservationStatus.OBSERVATION_STATUS_CONFIRMED : agentv1.ObservationStatus.OBSERVATION_STATUS_SEEN,
      confirmations: Number(confirmations > UINT32_MAX ? UINT32_MAX : confirmations),
      commitment: agentv1.Commitment.COMMITMENT_UNSPECIFIED,
      rbfSignaled: false,
      fromAddress: d.from ?? "",
      transferOrderId: "",
      blockHeight: b.height,
      blockHash: b.hash,
    })),
  };
}
