// Nonces per sending address. One signing sequence per address at a time (plan → nonce → sign
// → SIGNED acknowledged → broadcast), so two orders from the hot wallet never take the same
// nonce, and the next nonce is read when it is needed: the node's pending count, but never
// below one past a nonce this term signed or found recorded (a SIGNED transaction the node has
// not seen yet still owns its nonce). Nothing is kept across restarts: the node and the
// coordinator's recorded attempts are the memory.
import type { EvmRpc } from "../rpc/index.js";

export interface NonceManager {
  /** Runs fn holding the address's lock. */
  withLock<T>(address: string, fn: () => Promise<T>): Promise<T>;
  /** The nonce for a new transaction from address; call with its lock held. */
  next(address: string): Promise<bigint>;
  /** A nonce is taken for good: its SIGNED was acknowledged, or a recorded attempt carries it. */
  commit(address: string, nonce: bigint): void;
}

export function createNonceManager(o: { rpc: EvmRpc }): NonceManager {
  const locks = new Map<string, Promise<unknown>>();
  const floor = new Map<string, bigint>();
  const key = (a: string) => a.toLowerCase();
  return {
    async withLock(address, fn) {
      const k = key(address);
      const prev = locks.get(k) ?? Promise.resolve();
      const run = prev.then(fn, fn);
      // The chain continues whatever fn did; callers see their own result or error.
      const tail = run.catch(() => undefined);
      locks.set(k, tail);
      try {
        return await run;
      } finally {
        if (locks.get(k) === tail) locks.delete(k);
      }
    },
    async next(address) {
      const pending = BigInt(await o.rpc.call<string>("eth_getTransactionCount", [address, "pending"]));
      const f = floor.get(key(address)) ?? 0n;
      return pending > f ? pending : f;
    },
    commit(address, nonce) {
      const k = key(address);
      if (nonce + 1n > (floor.get(k) ?? 0n)) floor.set(k, nonce + 1n);
    },
  };
}
