import { childLogger, PonteError, retry, type Logger } from "@ponte/common";
import type { CoordinatorClient } from "../client/index.js";
import type { AgentMetrics } from "../metrics/index.js";
import type { AgentIdentity, BlockRef, CursorState, MempoolDeposit, ProcessedBlock, ReorgNotice } from "../types.js";

export interface Reporter {
  /**
   * Sends processed blocks (consecutive, linked by parent hash, starting right after the
   * cursor) and resolves with the coordinator's new cursor once it stored them. Transient
   * failures are retried with backoff until the term ends. Throws INVALID_STATE (details
   * cursor_height, cursor_hash: re-read the cursor) or LEASE_LOST (the term is over).
   */
  report(blocks: ProcessedBlock[], head: BlockRef, finalizedHeight: bigint): Promise<CursorState>;
  /** The chain was replaced above ancestor; the coordinator rewinds its cursor there. */
  reportReorg(notice: ReorgNotice): Promise<void>;
  /**
   * Unconfirmed deposits and the tx_refs of earlier ones replaced or evicted; resolves once
   * stored, retrying transient failures until the term ends (LEASE_LOST ends the term).
   */
  reportMempool(deposits: MempoolDeposit[], dropped: string[]): Promise<number>;
}

/** At most this many blocks per ReportBlocks call (keeps messages far below gRPC limits). */
const MAX_BLOCKS_PER_CALL = 500;

export const isCursorMismatch = (err: unknown): err is PonteError => err instanceof PonteError && err.code === "INVALID_STATE";
export const isLeaseLost = (err: unknown): err is PonteError => err instanceof PonteError && err.code === "LEASE_LOST";

export function createReporter(
  common: { logger: Logger },
  o: {
    client: CoordinatorClient;
    metrics: AgentMetrics;
    identity: AgentIdentity;
    signal: AbortSignal;
    onLeaseLost: (reason: string) => void;
  },
): Reporter {
  const logger = childLogger(common.logger, { network: o.identity.network });
  // Deposits reported but not yet final, for the confirmed/reorged counters.
  const pending = new Map<string, bigint>();

  const call = async <T>(method: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await retry(fn, {
        name: method,
        logger,
        signal: o.signal,
        attempts: Number.POSITIVE_INFINITY,
        baseMs: 200,
        maxMs: 5_000,
        isRetryable: (err) => err instanceof PonteError && err.retryable,
        onRetry: () => o.metrics.coordinatorRetry(method),
      });
    } catch (err) {
      if (isLeaseLost(err)) o.onLeaseLost(`${method}: lease lost`);
      throw err;
    }
  };

  return {
    async report(blocks, head, finalizedHeight) {
      o.metrics.setHead(head.height);
      let cursor: CursorState | undefined;
      for (let i = 0; i < blocks.length; i += MAX_BLOCKS_PER_CALL) {
        const chunk = blocks.slice(i, i + MAX_BLOCKS_PER_CALL);
        cursor = await call("ReportBlocks", () => o.client.reportBlocks(o.identity, { blocks: chunk, head, finalizedHeight }));
        let seen = 0;
        for (const b of chunk) {
          for (const d of b.deposits) {
            pending.set(d.txRef, b.height);
            seen++;
            logger.info(
              { block_number: b.height.toString(), tx_ref: d.txRef, address: d.address, contract: d.contract ?? "", amount: d.amount.toString() },
              "Deposit reported",
            );
          }
        }
        o.metrics.deposit("seen", seen);
        if (cursor.block) o.metrics.setProcessed(cursor.block.height);
      }
      let confirmed = 0;
      for (const [ref, h] of pending) {
        if (h <= finalizedHeight) {
          pending.delete(ref);
          confirmed++;
        }
      }
      o.metrics.deposit("confirmed", confirmed);
      return cursor ?? (await call("GetCursor", () => o.client.getCursor(o.identity)));
    },
    async reportReorg(notice) {
      await call("ReportReorg", () => o.client.reportReorg(o.identity, notice));
      for (const ref of notice.orphanedTxRefs) pending.delete(ref);
      for (const [ref, h] of pending) if (h > notice.ancestor.height) pending.delete(ref);
      o.metrics.deposit("reorged", notice.orphanedTxRefs.length);
      o.metrics.reorg(notice.depth);
      o.metrics.setProcessed(notice.ancestor.height);
      logger.warn(
        { common_ancestor: notice.ancestor.height.toString(), depth: notice.depth, orphaned: notice.orphanedTxRefs.length },
        "Reorg reported",
      );
    },
    async reportMempool(deposits, dropped) {
      return call("ReportMempool", () => o.client.reportMempool(o.identity, { deposits, dropped }));
    },
  };
}
