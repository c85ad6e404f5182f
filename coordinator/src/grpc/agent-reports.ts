import { PonteError } from "@ponte/common";
import { agentv1 } from "@ponte/proto";
import type { Identity } from "../agent/lease.js";
import type { DepositReporting, ObservedDeposit } from "../deposit/report.js";
import type { AgentReports } from "./agent-service.js";

const identity = (i: agentv1.AgentIdentity | undefined): Identity => {
  if (!i || !i.network || !i.agentId) throw new PonteError("VALIDATION_ERROR", "identity is required", {});
  return { network: i.network, agentId: i.agentId, leaseEpoch: i.leaseEpoch };
};

const AMOUNT = /^\d{1,78}$/;

/** Deposit observations only; transfer-status observations are the transfer service's. */
function deposits(obs: agentv1.Observation[]): ObservedDeposit[] {
  return obs
    .filter((o) => o.kind === agentv1.ObservationKind.OBSERVATION_KIND_DEPOSIT && o.status !== agentv1.ObservationStatus.OBSERVATION_STATUS_FAILED)
    .map((o) => {
      if (!o.txRef || !o.address || !AMOUNT.test(o.amount)) {
        throw new PonteError("VALIDATION_ERROR", "Each deposit needs tx_ref, address and a base-unit amount", { tx_ref: o.txRef });
      }
      return {
        txRef: o.txRef,
        txHash: o.txHash,
        address: o.address,
        contract: o.contract,
        amount: BigInt(o.amount),
        fromAddress: o.fromAddress,
        rbfSignaled: o.rbfSignaled,
      };
    });
}

export function agentReportHandlers(reporting: DepositReporting): Partial<AgentReports> {
  return {
    reportBlocks: async (r) => {
      const id = identity(r.identity);
      const blocks = r.blocks.map((b) => ({
        height: b.height,
        hash: b.hash,
        parentHash: b.parentHash,
        parentHeight: b.parentHeight === 0n && b.height > 0n ? b.height - 1n : b.parentHeight,
        deposits: deposits(b.observations),
      }));
      const c = await reporting.reportBlocks(id, blocks, r.head?.height ?? 0n, r.finalizedHeight);
      return { cursor: { hasCursor: true, block: { height: c.height, hash: c.hash }, finalizedHeight: c.finalizedHeight } };
    },
    reportMempool: async (r) => ({
      accepted: await reporting.reportMempool(identity(r.identity), deposits(r.observations), r.droppedTxRefs),
    }),
    reportReorg: async (r) => {
      if (!r.commonAncestor) throw new PonteError("VALIDATION_ERROR", "common_ancestor is required", {});
      return { accepted: await reporting.reportReorg(identity(r.identity), r.commonAncestor, r.orphanedTxRefs) };
    },
  };
}
