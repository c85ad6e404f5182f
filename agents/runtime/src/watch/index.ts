import { childLogger, delay, PonteError, type Logger } from "@ponte/common";
import type { CoordinatorClient } from "../client/index.js";
import type { AgentMetrics } from "../metrics/index.js";
import type { AgentIdentity, WatchEntry } from "../types.js";
import { entriesOf, WatchStore } from "./store.js";

export interface WatchChange {
  upserted: WatchEntry[];
  removed: string[];
  /** True when a fresh snapshot replaced the whole set. */
  resync: boolean;
}

/** What a follower sees of the watch set. */
export interface WatchView {
  get(address: string): WatchEntry | undefined;
  readonly size: number;
  /** True between a completed snapshot and the next stream failure. */
  readonly synced: boolean;
  /**
   * Changes on every loss and every completed snapshot (not on live upserts): a follower that
   * scanned blocks while the generation changed scans them again, in case it missed an update.
   */
  readonly generation: number;
  /** Resolves once synced (at once when it is), or when signal aborts. */
  waitSynced(signal: AbortSignal): Promise<void>;
}

export interface WatchSet extends WatchView {
  onChange(listener: (change: WatchChange) => void): () => void;
  /** Follows the coordinator's stream until signal aborts; reconnects with backoff and re-snapshots. */
  run(identity: AgentIdentity, signal: AbortSignal, onLeaseLost: (reason: string) => void): Promise<void>;
}

export function createWatchSet(
  common: { logger: Logger },
  o: { client: CoordinatorClient; metrics: AgentMetrics; normalize?: (address: string) => string; network: string },
): WatchSet {
  const logger = childLogger(common.logger, { network: o.network });
  const normalize = o.normalize ?? ((a: string) => a);
  let map = new WatchStore();
  let synced = false;
  let generation = 0;
  const listeners = new Set<(c: WatchChange) => void>();
  let waiters: (() => void)[] = [];

  const emit = (c: WatchChange) => {
    o.metrics.setWatched(map.size);
    for (const l of listeners) {
      try {
        l(c);
      } catch (err) {
        logger.error({ err }, "Watch-set listener failed");
      }
    }
  };
  const setSynced = (v: boolean) => {
    if (v === synced) return;
    synced = v;
    generation++;
    if (v) {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    }
  };

  return {
    get: (address) => map.get(normalize(address)),
    get size() {
      return map.size;
    },
    get synced() {
      return synced;
    },
    get generation() {
      return generation;
    },
    waitSynced(signal) {
      if (synced || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async run(identity, signal, onLeaseLost) {
      let failures = 0;
      while (!signal.aborted) {
        const stream = o.client.watchAddresses(identity);
        const onAbort = () => stream.cancel();
        signal.addEventListener("abort", onAbort, { once: true });
        // The snapshot is built aside and swapped in whole, so lookups never see half a set.
        let staging: WatchStore | undefined = new WatchStore();
        try {
          for await (const m of stream.messages) {
            if (staging) {
              staging.add(m.add, normalize);
              for (const a of m.remove) staging.delete(normalize(a));
              if (m.snapshotComplete) {
                map = staging;
                staging = undefined;
                failures = 0;
                setSynced(true);
                logger.info({ watched: map.size }, "Watch set synced");
                // The entries are built only if a listener reads them (a million objects otherwise).
                const snapshot = map;
                emit({
                  get upserted() {
                    return snapshot.entries();
                  },
                  removed: [],
                  resync: true,
                });
              }
            } else {
              map.add(m.add, normalize);
              for (const a of m.remove) map.delete(normalize(a));
              emit({ upserted: entriesOf(m.add), removed: m.remove, resync: false });
            }
          }
          if (!signal.aborted) logger.warn("Watch stream ended by the coordinator; reconnecting");
        } catch (err) {
          if (signal.aborted) break;
          if (err instanceof PonteError && err.code === "LEASE_LOST") {
            setSynced(false);
            onLeaseLost("watch stream: lease lost");
            break;
          }
          failures++;
          o.metrics.coordinatorRetry("WatchAddresses");
          logger.warn({ err, attempt: failures }, "Watch stream failed; reconnecting");
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
        setSynced(false);
        await delay(Math.min(10_000, 100 * 2 ** Math.min(failures, 7)) * (0.5 + Math.random() / 2), signal);
      }
      setSynced(false);
    },
  };
}
