import { childLogger, delay, PonteError, type Logger } from "@ponte/common";
import type { CoordinatorClient } from "../client/index.js";
import type { AgentMetrics } from "../metrics/index.js";
import type { AgentIdentity, DerivedAddress } from "../types.js";

export type DeriveAddress = (index: number) => DerivedAddress | Promise<DerivedAddress>;

export interface PoolKeeper {
  /** Keeps the pool at its target until signal aborts: at start, every intervalMs, and after poke(). */
  run(identity: AgentIdentity, signal: AbortSignal, onLeaseLost: (reason: string) => void): Promise<void>;
  /** Asks for a re-check soon (an address was allocated). */
  poke(): void;
  /** One check-and-refill; returns the pool status after it. */
  refill(identity: AgentIdentity, signal?: AbortSignal): Promise<{ available: number; added: number }>;
}

/** BIP32 non-hardened indices stop below 2^31. */
const MAX_INDEX = 0x7fff_ffff;

export function createPoolKeeper(
  common: { logger: Logger },
  o: {
    client: CoordinatorClient;
    derive: DeriveAddress;
    metrics: AgentMetrics;
    network: string;
    intervalMs?: number;
    chunkSize?: number;
    /** Coalesces a burst of allocations into one check. */
    debounceMs?: number;
  },
): PoolKeeper {
  const logger = childLogger(common.logger, { network: o.network });
  const chunkSize = Math.min(o.chunkSize ?? 500, 500);
  let wake: (() => void) | undefined;
  let poked = false;

  const refill: PoolKeeper["refill"] = async (identity, signal) => {
    let status = await o.client.getAddressPool(identity);
    o.metrics.setPoolAvailable(status.available);
    let added = 0;
    while (status.available < status.target && !signal?.aborted) {
      // next_index is one past the highest index ever stored (-1 when none): continue there,
      // so each index is used once and none is skipped.
      const start = status.nextIndex < 0n ? 0 : Number(status.nextIndex);
      const count = Math.min(chunkSize, status.target - status.available);
      if (start + count - 1 > MAX_INDEX) throw new PonteError("INTERNAL", "derivation indices exhausted", { start });
      const batch: DerivedAddress[] = [];
      for (let i = 0; i < count; i++) {
        batch.push(await o.derive(start + i));
        // Derivation is CPU-bound (~1 ms each): yield so block following is not starved.
        if (i % 25 === 24) await new Promise((r) => setImmediate(r));
      }
      const next = await o.client.addDepositAddresses(identity, batch);
      added += batch.length;
      if (next.nextIndex <= status.nextIndex && next.available <= status.available) {
        throw new PonteError("INTERNAL", "the coordinator did not take the new deposit addresses", {
          next_index: next.nextIndex.toString(),
          available: next.available,
        });
      }
      status = next;
      o.metrics.setPoolAvailable(status.available);
    }
    if (added > 0) logger.info({ added, available: status.available, target: status.target }, "Deposit-address pool refilled");
    return { available: status.available, added };
  };

  return {
    refill,
    poke() {
      poked = true;
      wake?.();
    },
    async run(identity, signal, onLeaseLost) {
      let failures = 0;
      while (!signal.aborted) {
        poked = false;
        try {
          await refill(identity, signal);
          failures = 0;
        } catch (err) {
          if (signal.aborted) break;
          if (err instanceof PonteError && err.code === "LEASE_LOST") {
            onLeaseLost("address pool: lease lost");
            break;
          }
          failures++;
          o.metrics.coordinatorRetry("AddDepositAddresses");
          logger.warn({ err, attempt: failures }, "Deposit-address pool refill failed; retrying");
        }
        const waitMs = failures > 0 ? Math.min(o.intervalMs ?? 30_000, 200 * 2 ** Math.min(failures, 6)) : (o.intervalMs ?? 30_000);
        if (!poked) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            void delay(waitMs, signal).then(resolve);
          });
          wake = undefined;
        }
        if (poked && failures === 0) await delay(o.debounceMs ?? 200, signal);
      }
    },
  };
}
