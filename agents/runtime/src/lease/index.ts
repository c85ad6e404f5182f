import { childLogger, delay, PonteError, type Logger } from "@ponte/common";
import type { CoordinatorClient } from "../client/index.js";
import type { AgentMetrics } from "../metrics/index.js";
import type { AgentIdentity, ChainFamily, SystemWallet } from "../types.js";

/** One period of leadership: from a grant to its loss (or shutdown). */
export interface LeaseTerm {
  readonly epoch: bigint;
  readonly identity: AgentIdentity;
  /** Aborted the moment the term ends: stop following, report nothing more. */
  readonly signal: AbortSignal;
  /** For callers that got LEASE_LOST from the coordinator: end the term at once. */
  lost(reason: string): void;
}

export interface Lease {
  readonly held: boolean;
  /** The current term's epoch; 0n when not held. */
  readonly epoch: bigint;
  /** Registers and renews until stop(); onTerm runs for each granted term and must return once term.signal aborts. */
  start(onTerm: (term: LeaseTerm) => Promise<void>): void;
  /** Ends the term (waiting for onTerm to return) and releases the lease so a standby takes over at once. */
  stop(): Promise<void>;
}

export interface LeaseOptions {
  client: CoordinatorClient;
  network: string;
  agentId: string;
  family: ChainFamily;
  chainId: string;
  version: string;
  /**
   * Sent when asking for the lease (epoch 0), not with every renewal: the coordinator records
   * them when a term starts, and a heartbeat stays a small write.
   */
  systemWallets?: SystemWallet[];
  metrics: AgentMetrics;
  /** Used until the coordinator tells its TTL (and when it says 0). */
  defaultTtlMs?: number;
  /** How long a term's work may take to stop once its signal aborted. */
  termStopTimeoutMs?: number;
}

interface ActiveTerm {
  term: LeaseTerm;
  ac: AbortController;
  done: Promise<void>;
  lostReason: string | undefined;
  finished: boolean;
  watchdog: NodeJS.Timeout | undefined;
}

export function createLease(common: { logger: Logger }, o: LeaseOptions): Lease {
  const logger = childLogger(common.logger, { network: o.network, agent_id: o.agentId });
  const stopAc = new AbortController();
  let ttlMs = o.defaultTtlMs ?? 3_000;
  let active: ActiveTerm | undefined;
  let loopDone: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  const identity = (epoch: bigint): AgentIdentity => ({ network: o.network, agentId: o.agentId, leaseEpoch: epoch });

  const armWatchdog = (t: ActiveTerm) => {
    clearTimeout(t.watchdog);
    // Without a renewal for a whole TTL the coordinator may already have granted the lease to a
    // standby: stop before it does anything in our name (its epoch fences us anyway).
    t.watchdog = setTimeout(() => t.term.lost("lease not renewed within its TTL"), ttlMs);
    t.watchdog.unref();
  };

  const startTerm = (epoch: bigint, onTerm: (term: LeaseTerm) => Promise<void>) => {
    const ac = new AbortController();
    const t: ActiveTerm = { ac, done: Promise.resolve(), lostReason: undefined, finished: false, watchdog: undefined, term: undefined as never };
    t.term = {
      epoch,
      identity: identity(epoch),
      signal: ac.signal,
      lost(reason) {
        if (ac.signal.aborted) return;
        t.lostReason = reason;
        o.metrics.setLeaseHeld(false);
        ac.abort(new PonteError("LEASE_LOST", reason));
        poke();
      },
    };
    active = t;
    armWatchdog(t);
    o.metrics.setLeaseHeld(true);
    logger.info({ lease_epoch: epoch.toString(), lease_ttl_ms: ttlMs }, "Lease granted; following the chain");
    t.done = onTerm(t.term)
      .catch((err: unknown) => logger.error({ err }, "Lease term ended with an error"))
      .finally(() => {
        t.finished = true;
        poke();
      });
  };

  const endTerm = async (reason: string) => {
    const t = active;
    if (!t) return;
    clearTimeout(t.watchdog);
    if (!t.ac.signal.aborted) t.ac.abort(new PonteError("LEASE_LOST", reason));
    o.metrics.setLeaseHeld(false);
    // A follower that ignores its signal must not keep the lease loop (or shutdown) waiting:
    // whatever it still sends carries a dead epoch and is refused.
    let timer: NodeJS.Timeout | undefined;
    const stuck = await Promise.race([
      t.done.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), o.termStopTimeoutMs ?? 10_000))),
    ]);
    clearTimeout(timer);
    if (stuck) logger.error({ lease_epoch: t.term.epoch.toString() }, "The term's work did not stop in time; abandoning it");
    active = undefined;
    logger.warn({ lease_epoch: t.term.epoch.toString(), reason: t.lostReason ?? reason }, "Stopped following; back to standby");
  };

  const loop = async (onTerm: (term: LeaseTerm) => Promise<void>) => {
    let epoch = 0n;
    let failures = 0;
    let lastHolder: string | undefined;
    while (!stopAc.signal.aborted) {
      let waitMs: number;
      try {
        const g = await o.client.register(identity(epoch), {
          family: o.family,
          chainId: o.chainId,
          version: o.version,
          systemWallets: epoch === 0n ? o.systemWallets : undefined,
        });
        failures = 0;
        if (g.ttlMs > 0) ttlMs = g.ttlMs;
        waitMs = ttlMs / 3;
        if (active && (active.lostReason !== undefined || active.finished)) {
          // Lost locally (watchdog, LEASE_LOST on a call, or the term crashed) while this call was
          // in flight: end that term and start over with a fresh registration.
          await endTerm(active.lostReason ?? "term ended");
          // Keep a granted epoch: at shutdown it is released, otherwise the next round renews it
          // into a fresh term.
          epoch = g.granted ? g.epoch : 0n;
          continue;
        }
        if (stopAc.signal.aborted) {
          if (g.granted) epoch = g.epoch;
          break;
        }
        if (g.granted) {
          if (active && active.term.epoch !== g.epoch) await endTerm("the lease was granted again under a new epoch");
          epoch = g.epoch;
          if (active) armWatchdog(active);
          else startTerm(g.epoch, onTerm);
          lastHolder = undefined;
        } else {
          if (active) await endTerm(`the lease is held by ${g.holder || "another agent"}`);
          epoch = 0n;
          if (g.holder !== lastHolder) logger.info({ holder_agent_id: g.holder }, "Standing by: another agent holds the lease");
          lastHolder = g.holder;
        }
      } catch (err) {
        if (err instanceof PonteError && err.code === "LEASE_LOST") {
          if (active) await endTerm("the coordinator says the lease was lost");
          epoch = 0n;
          waitMs = ttlMs / 3;
        } else {
          failures++;
          o.metrics.coordinatorRetry("Register");
          logger.warn({ err, attempt: failures }, "Lease registration failed; retrying");
          waitMs = Math.min(ttlMs / 3, 100 * 2 ** Math.min(failures, 6));
        }
      }
      if (active && (active.lostReason !== undefined || active.finished)) {
        const crashed = active.lostReason === undefined;
        await endTerm(active.lostReason ?? "term ended");
        epoch = 0n;
        // A term that ended by itself failed: give a standby the chance to take over.
        if (crashed) await delay(ttlMs, stopAc.signal);
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        void delay(waitMs, stopAc.signal).then(resolve);
      });
      wake = undefined;
    }
    await endTerm("shutting down");
    if (epoch > 0n) await releaseQuietly(epoch);
  };

  const releaseQuietly = async (epoch: bigint) => {
    try {
      await o.client.release(identity(epoch));
      logger.info({ lease_epoch: epoch.toString() }, "Lease released");
    } catch (err) {
      logger.warn({ err }, "Could not release the lease; it lapses after its TTL");
    }
  };

  return {
    get held() {
      return active !== undefined && !active.ac.signal.aborted;
    },
    get epoch() {
      return active && !active.ac.signal.aborted ? active.term.epoch : 0n;
    },
    start(onTerm) {
      if (loopDone) throw new Error("lease already started");
      loopDone = loop(onTerm);
    },
    async stop() {
      stopAc.abort();
      if (active) active.term.lost("shutting down");
      poke();
      await loopDone;
    },
  };
}
