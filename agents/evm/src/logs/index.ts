import { childLogger, type Logger } from "@ponte/common";
import { RpcError, toHex, type EvmRpc, type RpcRequest } from "../rpc/index.js";
import { TRANSFER_TOPIC, type RpcLog } from "../rpc/types.js";

export interface LogFetcher {
  /** Transfer logs of the token contracts in [from, to], in as many eth_getLogs calls as the provider needs. */
  byRange(from: bigint, to: bigint): Promise<RpcLog[]>;
  /** Transfer logs of each block by hash (pins the logs to exactly that block at the head). */
  byBlockHash(hashes: string[]): Promise<RpcLog[][]>;
  /** The eth_getLogs request of one block by hash (to send in a batch with other calls); undefined without token contracts. */
  blockHashRequest(hash: string): RpcRequest | undefined;
  /** The range the next call will try first. */
  readonly range: number;
}

/** Successful calls at a shrunken range before trying double again. */
const GROW_AFTER = 8;

/**
 * eth_getLogs with a range that shrinks when a provider refuses it. Providers say so in
 * different words and codes (-32005, -32602, -32000 + "block range too large", "more than
 * 10000 results"); rather than match their message text, any JSON-RPC error on a range wider
 * than one block halves the range. A single block that still fails is a real error.
 */
export function createLogFetcher(
  common: { logger: Logger },
  o: { rpc: EvmRpc; contracts: string[]; maxRange: number; network: string },
): LogFetcher {
  const logger = childLogger(common.logger, { network: o.network });
  let range = o.maxRange;
  let successes = 0;
  const filter = { address: o.contracts, topics: [TRANSFER_TOPIC] };

  return {
    get range() {
      return range;
    },
    async byRange(from, to) {
      if (o.contracts.length === 0 || to < from) return [];
      const out: RpcLog[] = [];
      let start = from;
      while (start <= to) {
        const width = BigInt(range);
        const end = start + width - 1n < to ? start + width - 1n : to;
        try {
          const logs = await o.rpc.call<RpcLog[]>("eth_getLogs", [{ ...filter, fromBlock: toHex(start), toBlock: toHex(end) }]);
          out.push(...logs);
          start = end + 1n;
          if (range < o.maxRange && ++successes >= GROW_AFTER) {
            range = Math.min(o.maxRange, range * 2);
            successes = 0;
          }
        } catch (err) {
          if (!(err instanceof RpcError) || end === start) throw err;
          const next = Math.max(1, Math.floor(Number(end - start + 1n) / 2));
          logger.warn({ from_block: start.toString(), to_block: end.toString(), range: next, code: err.code }, "eth_getLogs range refused; shrinking");
          range = next;
          successes = 0;
        }
      }
      return out;
    },
    async byBlockHash(hashes) {
      if (o.contracts.length === 0) return hashes.map(() => []);
      return o.rpc.batchOrThrow<RpcLog[]>(hashes.map((blockHash) => ({ method: "eth_getLogs", params: [{ ...filter, blockHash }] })));
    },
    blockHashRequest(blockHash) {
      return o.contracts.length === 0 ? undefined : { method: "eth_getLogs", params: [{ ...filter, blockHash }] };
    },
  };
}
