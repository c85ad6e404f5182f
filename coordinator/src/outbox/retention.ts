import type { Logger } from "@ponte/common";
import type { Sql } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { workerLoop } from "../worker-loop.js";

export interface OutboxRetentionOptions {
  /** Published events older than this (by sent_at) are deleted. */
  retentionHours: number;
  intervalMs: number;
  /** Rows read and deleted per statement. */
  batchSize: number;
}

export interface OutboxRetention {
  /** Deletes what is past retention, batch after batch; stops early once `signal` aborts. */
  runOnce(signal?: AbortSignal): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

// Published events are deleted once they are older than the retention: every event went to
// JetStream (which keeps its own retention) and the trade's history rows are the audit trail,
// so an outbox row is only needed until it is sent and past NATS' duplicate window.
//
// Each statement reads the oldest `batchSize` rows by seq (the primary key) and deletes the
// leading run of them that were sent before the cutoff. The first row that is unsent or too
// recent ends the sweep, so a pass reads only what it deletes plus one batch, never the whole
// table; an unsent row is never deleted, and the rows behind a stuck one wait for it (the relay's
// backlog metrics page for that). Replicas may sweep at once: a row deleted by one is skipped
// by the other.
export function createOutboxRetention(common: {
  sql: Sql;
  logger: Logger;
  metrics: CoordinatorMetrics;
  options: OutboxRetentionOptions;
}): OutboxRetention {
  const { sql, metrics, options: o } = common;
  const logger = common.logger.child({ component: "outbox_retention" });

  async function runOnce(signal?: AbortSignal): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await sql<{ seq: bigint }[]>`
        WITH head AS (
          SELECT seq, sent_at FROM outbox ORDER BY seq LIMIT ${o.batchSize}
        ), stop AS (
          SELECT min(seq) AS seq FROM head
           WHERE sent_at IS NULL OR sent_at >= now() - make_interval(hours => ${o.retentionHours})
        )
        DELETE FROM outbox d USING head, stop
         WHERE d.seq = head.seq AND (stop.seq IS NULL OR head.seq < stop.seq)
        RETURNING d.seq`;
      total += deleted.length;
      if (deleted.length < o.batchSize || signal?.aborted) break;
    }
    metrics.workerItems.inc({ worker: "outbox_retention" }, total);
    if (total > 0) logger.info({ deleted: total, retention_hours: o.retentionHours }, "Deleted published outbox events past retention");
    return total;
  }

  const loop = workerLoop({
    worker: "outbox_retention",
    intervalMs: o.intervalMs,
    metrics,
    logger,
    failure: "Outbox retention pass failed; retrying at the next interval",
    pass: async (signal) => void (await runOnce(signal)),
  });
  return { runOnce, start: loop.start, stop: loop.stop };
}
