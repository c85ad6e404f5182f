import { delay, type Logger } from "@ponte/common";
import type { CoordinatorMetrics } from "./metrics.js";

export interface WorkerLoop {
  /** Starts the loop (once). */
  start(): void;
  /** Ends the loop after the pass in progress, if any. */
  stop(): Promise<void>;
}

/**
 * A background worker's loop: once started, `pass` runs until the loop is stopped, again at once
 * when it answers true (more is waiting), else after `intervalMs`. Passes are counted by result in
 * ponte_coordinator_worker_runs_total; a failed one is logged and tried again at the next interval.
 */
export function workerLoop(o: {
  worker: string;
  intervalMs: number;
  metrics: CoordinatorMetrics;
  logger: Logger;
  /** The log message of a failed pass. */
  failure: string;
  pass: (signal: AbortSignal) => Promise<boolean | void>;
}): WorkerLoop {
  const ac = new AbortController();
  let loop: Promise<void> | undefined;
  return {
    start() {
      loop ??= (async () => {
        while (!ac.signal.aborted) {
          try {
            const more = await o.pass(ac.signal);
            o.metrics.workerRuns.inc({ worker: o.worker, result: "ok" });
            if (more === true) continue;
          } catch (err) {
            o.metrics.workerRuns.inc({ worker: o.worker, result: "error" });
            o.logger.error({ err }, o.failure);
          }
          await delay(o.intervalMs, ac.signal);
        }
      })();
    },
    async stop() {
      ac.abort();
      await loop;
    },
  };
}
