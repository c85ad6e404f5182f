import { Metadata, Server, ServerCredentials, status, type ServerWritableStream, type ServiceError } from "@grpc/grpc-js";
import { PonteError, toGrpcError, unary } from "@ponte/common";
import { agentv1 } from "@ponte/proto";

/**
 * An in-memory AgentService with the semantics the real coordinator implements (lease epochs,
 * consecutive block reports, INVALID_STATE with the cursor, reorg rewinds, the watch stream,
 * the address pool). For agent tests that run without Postgres; the end-to-end tests use the
 * real coordinator.
 */
export interface FakeDeposit {
  txRef: string;
  address: string;
  contract: string;
  amount: string;
  height: bigint;
  hash: string;
  status: "seen" | "confirmed" | "reorged";
  /** How many times a SEEN/CONFIRMED observation of it arrived. */
  reports: number;
  /** How many times it came back after a reorg. */
  reappeared: number;
}

export interface FakeCoordinator {
  readonly address: string;
  readonly port: number;
  lease: { holder: string | undefined; epoch: bigint; ttlMs: number; expiresAt: number };
  cursor: { block: { height: bigint; hash: string } | null; finalizedHeight: bigint };
  readonly deposits: Map<string, FakeDeposit>;
  /** Every ReportBlocks request accepted, in order. */
  readonly reports: agentv1.ReportBlocksRequest[];
  readonly reorgs: agentv1.ReorgReport[];
  /** Every call: method, agent, epoch; for assertions on who reported. */
  readonly calls: { method: string; agentId: string; epoch: bigint; ok: boolean }[];
  readonly pool: agentv1.DepositAddress[];
  readonly allocated: Set<string>;
  readonly watched: Map<string, agentv1.WatchedAddress>;
  poolSettings: { lowWater: number; target: number };
  /** Addresses per snapshot message (tests multi-message snapshots). */
  snapshotChunk: number;
  /** Adds watched addresses (e.g. a test address not from the pool) and pushes them live. */
  watch(entries: { address: string; tradeId: string; contract?: string; derivationIndex?: number }[]): void;
  unwatch(addresses: string[]): void;
  /** Takes the lowest unused pool address for a trade and pushes it to the watch stream. */
  allocate(tradeId: string, contract?: string): agentv1.DepositAddress;
  /** The next n calls of a method fail with code (default UNAVAILABLE). */
  failNext(method: string, n: number, code?: status): void;
  /** Ends every open watch stream with UNAVAILABLE (the agent must reconnect and re-snapshot). */
  dropWatchStreams(): void;
  openWatchStreams(): number;
  stop(): Promise<void>;
}

export async function startFakeCoordinator(o: { port?: number; leaseTtlMs?: number; lowWater?: number; target?: number } = {}): Promise<FakeCoordinator> {
  const server = new Server();
  const streams = new Set<ServerWritableStream<agentv1.WatchAddressesRequest, agentv1.WatchUpdate>>();
  const failures = new Map<string, { n: number; code: status }>();

  const fail = (method: string) => {
    const f = failures.get(method);
    if (!f || f.n <= 0) return;
    f.n--;
    const md = new Metadata();
    const err: Partial<ServiceError> = { code: f.code, details: `injected failure of ${method}`, metadata: md };
    throw Object.assign(new Error(err.details), err);
  };

  const checkLease = (method: string, id: agentv1.AgentIdentity | undefined) => {
    const ok = !!id && self.lease.holder === id.agentId && self.lease.epoch === id.leaseEpoch && id.leaseEpoch > 0n;
    self.calls.push({ method, agentId: id?.agentId ?? "", epoch: id?.leaseEpoch ?? 0n, ok });
    if (!ok) throw new PonteError("LEASE_LOST", "the lease is held under another epoch", { network: id?.network ?? "" });
  };

  const poolStatus = (): agentv1.AddressPoolStatus => {
    let max = -1n;
    for (const a of self.pool) if (BigInt(a.derivationIndex) > max) max = BigInt(a.derivationIndex);
    return {
      available: self.pool.length - self.allocated.size,
      // One past the highest stored derivation index, -1 when none (as the coordinator does).
      nextIndex: max < 0n ? -1n : max + 1n,
      lowWater: self.poolSettings.lowWater,
      target: self.poolSettings.target,
    };
  };

  const broadcast = (u: agentv1.WatchUpdate) => {
    for (const s of streams) s.write(u);
  };

  // Injected failures go out with their own status (as a transport problem would); everything
  // else through the shared PonteError mapping, like the real coordinator.
  const throwing =
    <Req, Res>(method: string, fn: (req: Req) => Res) =>
    (call: { request: Req; metadata: Metadata }, callback: (err: Partial<ServiceError> | null, res?: Res) => void) => {
      try {
        fail(method);
      } catch (err) {
        callback(err as ServiceError);
        return;
      }
      unary<Req, Res>(async (req) => fn(req))(call, callback);
    };

  const impl: agentv1.AgentServiceServer = {
    register: throwing("Register", (req: agentv1.RegisterRequest): agentv1.RegisterResponse => {
      const id = req.identity!;
      const now = Date.now();
      const l = self.lease;
      const free = l.holder === undefined || l.expiresAt <= now;
      self.calls.push({ method: "Register", agentId: id.agentId, epoch: id.leaseEpoch, ok: true });
      if (!free && l.holder !== id.agentId) return { granted: false, leaseEpoch: 0n, leaseTtlMs: l.ttlMs, holderAgentId: l.holder ?? "" };
      if (!(l.holder === id.agentId && id.leaseEpoch === l.epoch && id.leaseEpoch > 0n)) {
        l.epoch += 1n;
        l.holder = id.agentId;
      }
      l.expiresAt = now + l.ttlMs;
      return { granted: true, leaseEpoch: l.epoch, leaseTtlMs: l.ttlMs, holderAgentId: id.agentId };
    }),
    release: throwing("Release", (req: agentv1.ReleaseRequest): agentv1.ReleaseResponse => {
      const id = req.identity!;
      self.calls.push({ method: "Release", agentId: id.agentId, epoch: id.leaseEpoch, ok: true });
      if (self.lease.holder === id.agentId && self.lease.epoch === id.leaseEpoch) {
        self.lease.holder = undefined;
        self.lease.expiresAt = 0;
      }
      return {};
    }),
    getCursor: throwing("GetCursor", (req: agentv1.GetCursorRequest): agentv1.Cursor => {
      checkLease("GetCursor", req.identity);
      return toCursor();
    }),
    watchAddresses: (call) => {
      try {
        fail("WatchAddresses");
        checkLease("WatchAddresses", call.request.identity);
      } catch (err) {
        call.emit("error", err instanceof PonteError ? toGrpcError(err) : err);
        return;
      }
      const all = [...self.watched.values()];
      const size = Math.max(1, self.snapshotChunk);
      if (all.length === 0) call.write({ upsert: [], remove: [], snapshotComplete: true });
      for (let i = 0; i < all.length; i += size) {
        call.write({ upsert: all.slice(i, i + size), remove: [], snapshotComplete: i + size >= all.length });
      }
      streams.add(call);
      call.on("cancelled", () => streams.delete(call));
      call.on("close", () => streams.delete(call));
    },
    getAddressPool: throwing("GetAddressPool", (req: agentv1.GetAddressPoolRequest) => {
      checkLease("GetAddressPool", req.identity);
      return poolStatus();
    }),
    addDepositAddresses: throwing("AddDepositAddresses", (req: agentv1.AddDepositAddressesRequest) => {
      checkLease("AddDepositAddresses", req.identity);
      // Idempotent like the coordinator: an index or address already stored is skipped.
      const indices = new Set(self.pool.map((a) => a.derivationIndex));
      const addresses = new Set(self.pool.map((a) => a.address));
      for (const a of req.addresses) {
        if (indices.has(a.derivationIndex) || addresses.has(a.address)) continue;
        self.pool.push(a);
        indices.add(a.derivationIndex);
        addresses.add(a.address);
      }
      return poolStatus();
    }),
    reportBlocks: throwing("ReportBlocks", (req: agentv1.ReportBlocksRequest): agentv1.ReportBlocksResponse => {
      checkLease("ReportBlocks", req.identity);
      let prev = self.cursor.block;
      for (const b of req.blocks) {
        if (prev && (b.height !== prev.height + 1n || b.parentHash !== prev.hash)) {
          throw new PonteError("INVALID_STATE", "blocks must follow the cursor", {
            cursor_height: self.cursor.block?.height.toString() ?? null,
            cursor_hash: self.cursor.block?.hash ?? null,
          });
        }
        prev = { height: b.height, hash: b.hash };
      }
      self.reports.push(req);
      for (const b of req.blocks) {
        for (const ob of b.observations) {
          const d = self.deposits.get(ob.txRef);
          if (d) {
            if (d.status === "reorged") d.reappeared++;
            d.reports++;
            d.height = b.height;
            d.hash = b.hash;
            if (d.status === "reorged") d.status = "seen";
          } else {
            self.deposits.set(ob.txRef, {
              txRef: ob.txRef,
              address: ob.address,
              contract: ob.contract,
              amount: ob.amount,
              height: b.height,
              hash: b.hash,
              status: "seen",
              reports: 1,
              reappeared: 0,
            });
          }
        }
      }
      if (prev) self.cursor.block = prev;
      if (req.finalizedHeight > self.cursor.finalizedHeight) self.cursor.finalizedHeight = req.finalizedHeight;
      for (const d of self.deposits.values()) if (d.status === "seen" && d.height <= self.cursor.finalizedHeight) d.status = "confirmed";
      return { cursor: toCursor() };
    }),
    reportMempool: unary(async () => {
      throw new PonteError("INVALID_STATE", "not implemented by the fake coordinator");
    }),
    reportReorg: throwing("ReportReorg", (req: agentv1.ReorgReport): agentv1.ReportAck => {
      checkLease("ReportReorg", req.identity);
      const anc = req.commonAncestor!;
      self.reorgs.push(req);
      const orphaned = new Set(req.orphanedTxRefs);
      let accepted = 0;
      for (const d of self.deposits.values()) {
        if (d.status !== "reorged" && (orphaned.has(d.txRef) || d.height > anc.height)) {
          d.status = "reorged";
          accepted++;
        }
      }
      self.cursor.block = { height: anc.height, hash: anc.hash };
      return { accepted };
    }),
    streamTransferOrders: (call) => {
      call.emit("error", { code: status.UNIMPLEMENTED, details: "not implemented by the fake coordinator" });
    },
    reportTransfer: unary(async () => {
      throw new PonteError("INVALID_STATE", "not implemented by the fake coordinator");
    }),
  };

  const toCursor = (): agentv1.Cursor => ({
    hasCursor: self.cursor.block !== null,
    block: self.cursor.block ?? undefined,
    finalizedHeight: self.cursor.finalizedHeight,
  });

  server.addService(agentv1.AgentServiceService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${o.port ?? 0}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );

  const self: FakeCoordinator = {
    address: `127.0.0.1:${port}`,
    port,
    lease: { holder: undefined, epoch: 0n, ttlMs: o.leaseTtlMs ?? 3_000, expiresAt: 0 },
    cursor: { block: null, finalizedHeight: 0n },
    deposits: new Map(),
    reports: [],
    reorgs: [],
    calls: [],
    pool: [],
    allocated: new Set(),
    watched: new Map(),
    poolSettings: { lowWater: o.lowWater ?? 5, target: o.target ?? 10 },
    snapshotChunk: 2,
    watch(entries) {
      const upsert = entries.map((e) => ({
        address: e.address,
        tradeId: e.tradeId,
        contract: e.contract ?? "",
        watchUntil: "",
        derivationIndex: e.derivationIndex ?? 0,
      }));
      for (const u of upsert) self.watched.set(u.address, u);
      broadcast({ upsert, remove: [], snapshotComplete: false });
    },
    unwatch(addresses) {
      for (const a of addresses) self.watched.delete(a);
      broadcast({ upsert: [], remove: addresses, snapshotComplete: false });
    },
    allocate(tradeId, contract) {
      const a = [...self.pool].sort((x, y) => x.derivationIndex - y.derivationIndex).find((p) => !self.allocated.has(p.address));
      if (!a) throw new Error("the fake pool is empty");
      self.allocated.add(a.address);
      self.watch([{ address: a.address, tradeId, contract, derivationIndex: a.derivationIndex }]);
      return a;
    },
    failNext(method, n, code = status.UNAVAILABLE) {
      failures.set(method, { n, code });
    },
    dropWatchStreams() {
      for (const s of streams) s.emit("error", { code: status.UNAVAILABLE, details: "dropped by the test" });
      streams.clear();
    },
    openWatchStreams: () => streams.size,
    async stop() {
      for (const s of streams) s.end();
      streams.clear();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
    },
  };
  return self;
}
