import type { Deposit, ProcessedBlock, WatchView } from "@ponte/agent-runtime";
import { coinsToSats, type UtxoRpc } from "../rpc/index.js";
import type { RpcBlock, RpcHeader, RpcTx } from "../rpc/types.js";

/** The chain moved while a range was read (a block no longer links): read again. */
export class ChainMovedError extends Error {
  override name = "ChainMovedError";
}

export type ScriptReader = (scriptHex: string) => string | null;

/** Outputs of tx paying a watched address (native asset only), as deposits "txid:vout". */
export function depositsOf(tx: RpcTx, watch: WatchView, readScript: ScriptReader): Deposit[] {
  const out: Deposit[] = [];
  for (const o of tx.vout) {
    const address = readScript(o.scriptPubKey.hex);
    if (address === null) continue;
    const entry = watch.get(address);
    if (!entry || entry.contract !== null) continue;
    out.push({ txRef: `${tx.txid}:${o.n}`, txHash: tx.txid, address: entry.address, contract: null, amount: coinsToSats(o.value), from: null });
  }
  return out;
}

/** Blocks of a range with their deposits, and each block's txids (for the mempool tracker). */
export interface ProcessedRange {
  blocks: ProcessedBlock[];
  txids: string[][];
}

export interface BlockSource {
  /** Headers at heights (ascending, consecutive or not); null past the tip. */
  headers(heights: bigint[]): Promise<(RpcHeader | null)[]>;
  header(hash: string): Promise<RpcHeader | null>;
  /** The active chain's block hash at height; null past the tip. */
  hashAt(height: bigint): Promise<string | null>;
  /** Blocks from..to (inclusive), checked to link by parent hash, with their deposits. */
  process(from: bigint, to: bigint): Promise<ProcessedRange>;
}

/**
 * Reads blocks in JSON-RPC batches — getblockhash for the range, then getblock <hash> 2 (or REST
 * /rest/block/<hash>.json) — and attributes outputs by scriptPubKey.
 */
export function createBlockSource(o: { rpc: UtxoRpc; watch: WatchView; readScript: ScriptReader; useRest: boolean }): BlockSource {
  const { rpc } = o;
  const hashes = async (heights: bigint[]): Promise<(string | null)[]> => {
    const rs = await rpc.batch<string>(heights.map((h) => ({ method: "getblockhash", params: [Number(h)] })));
    return rs.map((r) => {
      if (r.ok) return r.result;
      // -8 "Block height out of range": past the tip (it shrank under us).
      return null;
    });
  };
  const self: BlockSource = {
    async headers(heights) {
      const hs = await hashes(heights);
      const known = hs.filter((h): h is string => h !== null);
      const rs = await rpc.batchOrThrow<RpcHeader>(known.map((h) => ({ method: "getblockheader", params: [h, true] })));
      const byHash = new Map(rs.map((r) => [r.hash, r]));
      return hs.map((h) => (h === null ? null : (byHash.get(h) ?? null)));
    },
    async hashAt(height) {
      const [h] = await hashes([height]);
      return h ?? null;
    },
    async header(hash) {
      const [r] = await rpc.batch<RpcHeader>([{ method: "getblockheader", params: [hash, true] }]);
      return r && r.ok ? r.result : null;
    },
    async process(from, to) {
      const heights: bigint[] = [];
      for (let h = from; h <= to; h++) heights.push(h);
      const hs = await hashes(heights);
      if (hs.some((h) => h === null)) throw new ChainMovedError(`the chain is shorter than ${to} now`);
      const raw: RpcBlock[] = o.useRest
        ? await Promise.all(
            (hs as string[]).map(async (h) => {
              const b = await rpc.rest<RpcBlock>(`/rest/block/${h}.json`);
              if (!b) throw new ChainMovedError(`block ${h} is unknown to the node's REST interface`);
              return b;
            }),
          )
        : await rpc.batchOrThrow<RpcBlock>((hs as string[]).map((h) => ({ method: "getblock", params: [h, 2] })));
      const blocks: ProcessedBlock[] = [];
      const txids: string[][] = [];
      for (let i = 0; i < raw.length; i++) {
        const b = raw[i]!;
        if (BigInt(b.height) !== heights[i]) throw new ChainMovedError(`block ${b.hash} is at ${b.height}, expected ${heights[i]}`);
        const prev = raw[i - 1];
        if (prev && b.previousblockhash !== prev.hash) throw new ChainMovedError(`block ${b.height} does not link to ${prev.hash}`);
        blocks.push({
          height: BigInt(b.height),
          hash: b.hash,
          parentHash: b.previousblockhash ?? "0".repeat(64),
          time: BigInt(b.time),
          deposits: b.tx.flatMap((tx) => depositsOf(tx, o.watch, o.readScript)),
        });
        txids.push(b.tx.map((t) => t.txid));
      }
      return { blocks, txids };
    },
  };
  return self;
}
