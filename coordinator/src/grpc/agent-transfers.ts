import type { ServerWritableStream } from "@grpc/grpc-js";
import { createWakeup, PonteError, type Logger } from "@ponte/common";
import { agentv1 } from "@ponte/proto";
import type { Sql } from "../db/index.js";
import { assertLease, type Identity } from "../agent/lease.js";
import type { Order, TransferKind, Transfers, TransferStatus } from "../transfer/index.js";
import type { AgentReports } from "./agent-service.js";

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
const FROM_PROTO = new Map<agentv1.TransferStatus, TransferStatus>(
  Object.entries(STATUS).map(([k, v]) => [v, k as TransferStatus]),
);

export const orderToProto = (o: Order): agentv1.TransferOrder => ({
  orderId: o.id,
  kind: KIND[o.kind],
  tradeId: o.tradeId ?? "",
  fromAddress: o.fromAddress,
  fromDerivationIndex: o.fromDerivationIndex,
  toAddress: o.toAddress,
  contract: o.contract,
  amount: o.amount.toString(),
  deductFee: o.deductFee,
  sourceTxRefs: o.sourceTxRefs,
  attempts: o.attempts.map((a) => ({ attempt: a.attempt, txHash: a.txHash, rawTx: a.rawTx, nonce: a.nonce, fee: a.fee, status: STATUS[a.status] })),
  dependsOnOrderId: o.dependsOn ?? "",
  status: STATUS[o.status],
  maxFee: o.maxFee === null ? "" : o.maxFee.toString(),
});

const identity = (i: agentv1.AgentIdentity | undefined): Identity => {
  if (!i || !i.network || !i.agentId) throw new PonteError("VALIDATION_ERROR", "identity is required", {});
  return { network: i.network, agentId: i.agentId, leaseEpoch: i.leaseEpoch };
};

/** StreamTransferOrders and ReportTransfer over the transfer service. */
export function agentTransferHandlers(common: {
  sql: Sql;
  transfers: Transfers;
  logger: Logger;
  signal: AbortSignal;
  pollMs: number;
}): Partial<AgentReports> {
  const { sql, transfers } = common;
  return {
    streamTransferOrders: async (call: ServerWritableStream<agentv1.StreamTransferOrdersRequest, agentv1.TransferOrder>) => {
      const id = identity(call.request.identity);
      await assertLease(sql, id);
      const ac = new AbortController();
      const stop = () => ac.abort();
      common.signal.addEventListener("abort", stop, { once: true });
      call.once("cancelled", stop);
      call.once("close", stop);
      // News while a pass runs, or LISTEN back after a drop, starts the next pass at once.
      const news = createWakeup();
      const listener = await sql.listen("ponte_transfers", news.notify, news.notify);
      const sent = new Map<string, string>();
      try {
        while (!ac.signal.aborted && !call.cancelled) {
          // A stream outlives a lease only until the next pass.
          await assertLease(sql, id);
          for (const o of await transfers.actionable(id.network)) {
            const version = `${o.status}:${o.attempts.length}:${o.updatedAt.getTime()}`;
            if (sent.get(o.id) === version) continue;
            sent.set(o.id, version);
            call.write(orderToProto(o));
          }
          await news.wait(common.pollMs, ac.signal);
        }
      } finally {
        common.signal.removeEventListener("abort", stop);
        await listener.unlisten().catch((err: unknown) => common.logger.warn({ err }, "UNLISTEN failed"));
      }
    },
    reportTransfer: async (r) => {
      const id = identity(r.identity);
      const status = r.attempt ? FROM_PROTO.get(r.attempt.status) : undefined;
      if (!r.orderId || !status || status === "PENDING") {
        throw new PonteError("VALIDATION_ERROR", "order_id and an attempt with a reportable status are required", { order_id: r.orderId });
      }
      const a = r.attempt!;
      await sql.begin(async (tx) => {
        await assertLease(tx, id, true);
        await transfers.report(
          id.network,
          {
            orderId: r.orderId,
            status,
            reason: r.reason,
            blockHeight: r.blockHeight,
            attempt: { attempt: a.attempt, txHash: a.txHash, rawTx: a.rawTx, nonce: a.nonce, fee: a.fee, status },
          },
          tx,
        );
      });
      return { accepted: 1 };
    },
    reportWalletBalances: async (r) => {
      const id = identity(r.identity);
      const balances = r.balances.map((b) => {
        if (!b.address || !/^\d{1,78}$/.test(b.balance)) {
          throw new PonteError("VALIDATION_ERROR", "each balance needs an address and a decimal string of base units", { address: b.address });
        }
        return { address: b.address, contract: b.contract, balance: BigInt(b.balance) };
      });
      await assertLease(sql, id);
      await transfers.reportBalances(id.network, r.blockHeight, balances);
      return { accepted: balances.length };
    },
  };
}
