// ReportMempool, which the runtime's CoordinatorClient does not wrap (it was built for the EVM
// family): a small client of the same AgentService for it, fenced by the same lease epoch.
// TODO(runtime): move into CoordinatorClient/Reporter once agents/runtime grows reportMempool.
import { credentials, Metadata } from "@grpc/grpc-js";
import { fromGrpcError, PonteError, retry, type Logger } from "@ponte/common";
import { agentv1 } from "@ponte/proto";
import type { AgentIdentity, Deposit } from "@ponte/agent-runtime";

export interface MempoolDeposit extends Deposit {
  /** The transaction can still be replaced (BIP125, signalled or inherited). */
  rbf: boolean;
}

export interface MempoolReporter {
  /** Resolves once the coordinator stored the report; retries transient failures until signal aborts. */
  report(identity: AgentIdentity, deposits: MempoolDeposit[], dropped: string[], signal: AbortSignal): Promise<number>;
  close(): void;
}

export function createMempoolReporter(common: { logger: Logger }, o: { address: string; tls: boolean; deadlineMs: number }): MempoolReporter {
  const client = new agentv1.AgentServiceClient(o.address, o.tls ? credentials.createSsl() : credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 5_000,
  });
  const once = (req: agentv1.MempoolReport) =>
    new Promise<number>((resolve, reject) => {
      client.reportMempool(req, new Metadata(), { deadline: Date.now() + o.deadlineMs }, (err, res) => (err ? reject(fromGrpcError(err)) : resolve(res.accepted)));
    });
  return {
    async report(identity, deposits, dropped, signal) {
      const req: agentv1.MempoolReport = {
        identity: { network: identity.network, agentId: identity.agentId, leaseEpoch: identity.leaseEpoch },
        observations: deposits.map((d) => ({
          txRef: d.txRef,
          txHash: d.txHash,
          address: d.address,
          contract: "",
          amount: d.amount.toString(),
          kind: agentv1.ObservationKind.OBSERVATION_KIND_DEPOSIT,
          status: agentv1.ObservationStatus.OBSERVATION_STATUS_SEEN,
          confirmations: 0,
          commitment: agentv1.Commitment.COMMITMENT_UNSPECIFIED,
          rbfSignaled: d.rbf,
          fromAddress: d.from ?? "",
          transferOrderId: "",
          blockHeight: 0n,
          blockHash: "",
        })),
        droppedTxRefs: dropped,
      };
      return retry(() => once(req), {
        name: "ReportMempool",
        logger: common.logger,
        signal,
        attempts: Number.POSITIVE_INFINITY,
        baseMs: 200,
        maxMs: 5_000,
        isRetryable: (err) => err instanceof PonteError && err.retryable,
      });
    },
    close() {
      client.close();
    },
  };
}
