import { once } from "node:events";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { PonteError, type Logger } from "@ponte/common";
import { agentv1 } from "@ponte/proto";
import type { Sql } from "../db/index.js";
import { acquireLease, assertLease, releaseLease, type Identity } from "../agent/lease.js";
import { addAddresses, poolStatus } from "../agent/pool.js";
import { streamWatchSet } from "../agent/watch.js";
import type { Handlers } from "./handlers.js";

export interface AgentServiceOptions {
  leaseTtlMs: number;
  poolLowWater: number;
  poolTarget: number;
  watchPollMs: number;
}

const identity = (i: agentv1.AgentIdentity | undefined): Identity => {
  if (!i || !i.network || !i.agentId) {
    throw new PonteError("VALIDATION_ERROR", "identity.network and identity.agent_id are required", {});
  }
  return { network: i.network, agentId: i.agentId, leaseEpoch: i.leaseEpoch };
};

export type AgentReports = Pick<
  Handlers<agentv1.AgentServiceServer>,
  "reportBlocks" | "reportMempool" | "reportReorg" | "streamTransferOrders" | "reportTransfer" | "reportWalletBalances"
>;

export function agentServiceHandlers(common: {
  sql: Sql;
  logger: Logger;
  options: AgentServiceOptions;
  signal: AbortSignal;
  reports: Partial<AgentReports>;
  /** Records the wallets a granted agent derives; never keys. */
  registerWallets: (network: string, wallets: agentv1.SystemWallet[]) => Promise<void>;
}): Partial<Handlers<agentv1.AgentServiceServer>> {
  const { sql, options: o } = common;
  const logger = common.logger.child({ component: "agents" });
  const pool = (network: string) => poolStatus(sql, network, o.poolLowWater, o.poolTarget);
  return {
    register: async (r) => {
      const id = identity(r.identity);
      const lease = await acquireLease(sql, id.network, id.agentId, o.leaseTtlMs);
      if (lease.granted && lease.epoch !== id.leaseEpoch) {
        logger.info({ network: id.network, agent_id: id.agentId, epoch: lease.epoch.toString() }, "Agent took the lease");
        if (r.systemWallets.length > 0) await common.registerWallets(id.network, r.systemWallets);
      }
      return { granted: lease.granted, leaseEpoch: lease.epoch, leaseTtlMs: o.leaseTtlMs, holderAgentId: lease.holder };
    },
    release: async (r) => {
      const id = identity(r.identity);
      await releaseLease(sql, id);
      logger.info({ network: id.network, agent_id: id.agentId }, "Agent released the lease");
      return {};
    },
    getCursor: async (r) => {
      const id = identity(r.identity);
      await assertLease(sql, id);
      const [c] = await sql<{ height: bigint; hash: string; finalized_height: bigint }[]>`
        SELECT height, hash, finalized_height FROM chain_cursors WHERE network = ${id.network}`;
      return c
        ? { hasCursor: true, block: { height: c.height, hash: c.hash }, finalizedHeight: c.finalized_height }
        : { hasCursor: false, block: undefined, finalizedHeight: 0n };
    },
    getAddressPool: async (r) => {
      const id = identity(r.identity);
      await assertLease(sql, id);
      return pool(id.network);
    },
    addDepositAddresses: async (r) => {
      const id = identity(r.identity);
      await assertLease(sql, id);
      await addAddresses(sql, id.network, r.addresses.map((a) => ({
        address: a.address,
        derivationIndex: a.derivationIndex,
        derivationPath: a.derivationPath,
        script: a.script,
      })));
      return pool(id.network);
    },
    watchAddresses: async (call: ServerWritableStream<agentv1.WatchAddressesRequest, agentv1.WatchUpdate>) => {
      const id = identity(call.request.identity);
      await assertLease(sql, id);
      const ac = new AbortController();
      const stop = () => ac.abort();
      common.signal.addEventListener("abort", stop, { once: true });
      call.once("cancelled", stop);
      call.once("close", stop);
      let closed = false;
      call.once("close", () => (closed = true));
      try {
        await streamWatchSet({
          sql,
          network: id.network,
          signal: ac.signal,
          pollMs: o.watchPollMs,
          logger,
          sink: {
            get closed() {
              return closed || call.cancelled;
            },
            send: async (u) => {
              const more = call.write({ add: u.add, remove: u.remove, snapshotComplete: u.snapshotComplete });
              // A slow agent paces the snapshot's cursor instead of a million addresses queuing here.
              if (!more && !closed) await once(call, "drain", { signal: ac.signal }).catch(() => undefined);
            },
          },
        });
      } finally {
        common.signal.removeEventListener("abort", stop);
      }
    },
    ...common.reports,
  };
}
