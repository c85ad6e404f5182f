import { setMaxListeners } from "node:events";
import type { Logger } from "./logger.js";

export interface Shutdown {
  readonly signal: AbortSignal;
  readonly isShuttingDown: boolean;
  /** Cleanups run in reverse order of registration (last started, first stopped). */
  onShutdown(name: string, fn: () => Promise<void> | void): void;
  shutdown(reason: string): Promise<void>;
}

/** Listeners the shutdown signal holds before Node warns of a leak. */
export const SHUTDOWN_MAX_LISTENERS = 1_000;

export function createShutdown(logger: Logger, opts: { timeoutMs?: number } = {}): Shutdown {
  const ac = new AbortController();
  // Every open stream and wait listens to this one signal until it ends: one agent's two streams
  // each, so ten networks passed Node's default of 10 and printed a leak warning in production
  // logs. A real leak (a listener never removed) still warns, past this bound.
  setMaxListeners(SHUTDOWN_MAX_LISTENERS, ac.signal);
  const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
  let running: Promise<void> | undefined;
  const self: Shutdown = {
    signal: ac.signal,
    get isShuttingDown() {
      return ac.signal.aborted;
    },
    onShutdown(name, fn) {
      cleanups.push({ name, fn });
    },
    shutdown(reason) {
      running ??= (async () => {
        logger.info({ reason }, "Shutting down");
        ac.abort(new Error(reason));
        const timer = setTimeout(() => {
          logger.error({ timeout_ms: opts.timeoutMs ?? 10_000 }, "Shutdown timed out; exiting");
          process.exit(1);
        }, opts.timeoutMs ?? 10_000);
        timer.unref();
        for (const c of cleanups.reverse()) {
          try {
            await c.fn();
          } catch (err) {
            logger.error({ err, cleanup: c.name }, "Cleanup failed");
          }
        }
        clearTimeout(timer);
        logger.info("Stopped");
      })();
      return running;
    },
  };
  return self;
}

/** SIGTERM/SIGINT → orderly shutdown, then exit. */
export function installSignalHandlers(shutdown: Shutdown): void {
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      void shutdown.shutdown(sig).then(() => process.exit(0));
    });
  }
}

/** Resolves after ms, or at once when the signal aborts (never rejects). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
