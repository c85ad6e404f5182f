import type { Logger } from "@ponte/common";
import type { Sql, Tx } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { systemActor } from "../trade/actor.js";
import { transition, type TransitionContext } from "../trade/transition.js";
import { workerLoop } from "../worker-loop.js";

export interface ExpiryWorker {
  runOnce(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

// PENDING trades past expires_at → EXPIRED. Rows are claimed with FOR UPDATE SKIP LOCKED, so
// several coordinator replicas share the work and never expire a trade twice; a deposit seen
// in the meantime wins because the guarded transition expects PENDING.
export function createExpiryWorker(common: {
  sql: Sql;
  logger: Logger;
  metrics: CoordinatorMetrics;
  transitions: TransitionContext;
  intervalMs: number;
  batchSize: number;
  /** Re-evaluates a DEPOSIT_DETECTED trade past its deadline (a final shortfall → UNDERPAID). */
  evaluate?: (tx: Tx, tradeId: string) => Promise<void>;
}): ExpiryWorker {
  const logger = common.logger.child({ component: "expiry" });
  const actor = systemActor("expiry");

  async function runOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await common.sql.begin(async (tx) => {
        const due = await tx<{ id: string }[]>`
          SELECT id FROM instant_trades
           -- A custodial sell is not waiting for the user: its transfer order decides its fate.
           WHERE status = 'PENDING' AND expires_at <= now() AND source = 'deposit'
           ORDER BY expires_at
           LIMIT ${common.batchSize}
           FOR UPDATE SKIP LOCKED`;
        for (const { id } of due) {
          await transition(tx, common.transitions, {
            tradeId: id,
            from: "PENDING",
            to: "EXPIRED",
            actor,
            reason: "deadline passed with no deposit",
          });
          logger.info({ trade_id: id }, "Trade expired");
        }
        return due.length;
      });
      total += n;
      if (n < common.batchSize) break;
    }
    if (common.evaluate) {
      // Partially paid trades wait for the rest until the deadline; then their fate is decided.
      await common.sql.begin(async (tx) => {
        const due = await tx<{ id: string }[]>`
          SELECT id FROM instant_trades
           WHERE status = 'DEPOSIT_DETECTED' AND expires_at <= now() AND confirmed_amount = received_amount AND source = 'deposit'
           ORDER BY expires_at LIMIT ${common.batchSize} FOR UPDATE SKIP LOCKED`;
        for (const { id } of due) await common.evaluate!(tx, id);
      });
    }
    common.metrics.workerItems.inc({ worker: "expiry" }, total);
    return total;
  }

  const loop = workerLoop({
    worker: "expiry",
    intervalMs: common.intervalMs,
    metrics: common.metrics,
    logger,
    failure: "Expiry pass failed",
    pass: async () => void (await runOnce()),
  });
  return { runOnce, start: loop.start, stop: loop.stop };
}
