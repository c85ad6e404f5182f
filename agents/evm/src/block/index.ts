import type { Deposit, ProcessedBlock, WatchView } from "@ponte/agent-runtime";
import type { Logger } from "@ponte/common";
import { getAddress } from "ethers";
import type { TokenConfig } from "../config/index.js";
import type { LogFetcher } from "../logs/index.js";
import { METHOD_NOT_FOUND, RpcError, toHex, type EvmRpc } from "../rpc/index.js";
import { toHeader, TRANSFER_TOPIC, type Header, type RpcBlock, type RpcLog, type RpcReceipt, type RpcTx } from "../rpc/types.js";

/** The node's chain changed while we were reading it (a block vanished or stopped linking): read again. */
export class ChainMovedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChainMovedError";
  }
}

export interface BlockProcessor {
  /**
   * Reads blocks from..to and finds deposits to watched addresses: native value from the
   * full-transaction blocks, ERC-20 Transfer logs of the configured contracts (by block hash
   * when byHash, else by range, both checked against the blocks' hashes), minus failed
   * transactions. The blocks link to each other by parent hash or ChainMovedError is thrown.
   */
  process(from: bigint, to: bigint, opts?: { byHash?: boolean }): Promise<ProcessedBlock[]>;
  /** Headers by height (null where the node has no such block). */
  headers(heights: bigint[]): Promise<(Header | null)[]>;
}

interface Candidate {
  deposit: Deposit;
  /** Native deposits need their receipt checked; a token log only exists if the transaction succeeded. */
  needsReceipt: boolean;
  order: [number, number];
}

export function createBlockProcessor(
  common: { logger: Logger },
  o: {
    rpc: EvmRpc;
    logs: LogFetcher;
    tokens: TokenConfig[];
    watch: WatchView;
    network: string;
    /**
     * The network's own wallets: native value they send to a watched address is a gas top-up
     * (a transfer order the coordinator follows by its reports), not a user's deposit.
     */
    ownAddresses?: readonly string[];
  },
): BlockProcessor {
  const own = new Set((o.ownAddresses ?? []).map((a) => a.toLowerCase()));
  const logger = common.logger.child({ network: o.network });
  // Contracts go out lower-case: the coordinator's registry stores EVM contracts that way and
  // matches a deposit's contract to its trade's exactly.
  const tokens = new Map(o.tokens.map((t) => [t.contract.toLowerCase(), { ...t, contract: t.contract.toLowerCase() }]));
  let blockReceipts: boolean | undefined = undefined;

  const fetchBlocks = async (from: bigint, to: bigint): Promise<RpcBlock[]> => {
    const reqs = [];
    for (let h = from; h <= to; h++) reqs.push({ method: "eth_getBlockByNumber", params: [toHex(h), true] });
    const blocks = await o.rpc.batchOrThrow<RpcBlock | null>(reqs);
    return blocks.map((b, i) => {
      if (!b) throw new ChainMovedError(`block ${from + BigInt(i)} is not on the node (yet)`);
      return b;
    });
  };

  const nativeCandidates = (b: RpcBlock): Candidate[] => {
    const out: Candidate[] = [];
    for (const tx of b.transactions as RpcTx[]) {
      if (!tx.to) continue;
      const entry = o.watch.get(tx.to);
      if (!entry) continue;
      const value = BigInt(tx.value);
      if (value === 0n || own.has(tx.from.toLowerCase())) continue;
      const hash = tx.hash.toLowerCase();
      out.push({
        deposit: { txRef: `${hash}:native`, txHash: hash, address: entry.address, contract: null, amount: value, from: getAddress(tx.from) },
        needsReceipt: true,
        order: [Number(BigInt(tx.transactionIndex)), -1],
      });
    }
    return out;
  };

  const tokenCandidate = (log: RpcLog): Candidate | undefined => {
    if (log.removed) return undefined;
    const token = tokens.get(log.address.toLowerCase());
    // Transfer(address indexed, address indexed, uint256): three topics, 32 bytes of data.
    // ERC-721 Transfer has the same topic with four topics; a look-alike contract is not in `tokens`.
    if (!token || log.topics.length !== 3 || log.topics[0]?.toLowerCase() !== TRANSFER_TOPIC || log.data.length !== 66) return undefined;
    const to = `0x${log.topics[2]!.slice(26)}`;
    const entry = o.watch.get(to);
    if (!entry) return undefined;
    const amount = BigInt(log.data);
    if (amount === 0n) return undefined;
    const hash = log.transactionHash.toLowerCase();
    const logIndex = Number(BigInt(log.logIndex));
    return {
      deposit: { txRef: `${hash}:${logIndex}`, txHash: hash, address: entry.address, contract: token.contract, amount, from: getAddress(`0x${log.topics[1]!.slice(26)}`) },
      needsReceipt: false,
      order: [Number(BigInt(log.transactionIndex)), logIndex],
    };
  };

  /** Success flags for the candidates' transactions, from one block's receipts. */
  const receiptStatus = async (block: RpcBlock, txHashes: string[]): Promise<Map<string, boolean>> => {
    const status = new Map<string, boolean>();
    const take = (r: RpcReceipt | null) => {
      if (!r) throw new ChainMovedError(`receipt missing in block ${block.hash}`);
      if (r.blockHash.toLowerCase() !== block.hash.toLowerCase()) throw new ChainMovedError(`receipt of ${r.transactionHash} is in another block`);
      // Receipts before Byzantium have no status; those transactions did not revert value transfers.
      status.set(r.transactionHash.toLowerCase(), r.status === undefined || BigInt(r.status) === 1n);
    };
    if (blockReceipts !== false) {
      try {
        const all = await o.rpc.call<RpcReceipt[] | null>("eth_getBlockReceipts", [block.hash]);
        if (!all) throw new ChainMovedError(`block ${block.hash} has no receipts on the node`);
        blockReceipts = true;
        const wanted = new Set(txHashes);
        for (const r of all) if (wanted.has(r.transactionHash.toLowerCase())) take(r);
        for (const h of txHashes) if (!status.has(h)) throw new ChainMovedError(`no receipt for ${h} in block ${block.hash}`);
        return status;
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        if (err.code === METHOD_NOT_FOUND) {
          blockReceipts = false;
          logger.info("The node has no eth_getBlockReceipts; reading receipts one by one");
        }
      }
    }
    const rs = await o.rpc.batchOrThrow<RpcReceipt | null>(txHashes.map((h) => ({ method: "eth_getTransactionReceipt", params: [h] })));
    rs.forEach(take);
    return status;
  };

  return {
    async headers(heights) {
      const bs = await o.rpc.batchOrThrow<RpcBlock<string> | null>(heights.map((h) => ({ method: "eth_getBlockByNumber", params: [toHex(h), false] })));
      return bs.map((b) => (b ? toHeader(b) : null));
    },
    async process(from, to, opts = {}) {
      const rpcBlocks = await fetchBlocks(from, to);
      const headers = rpcBlocks.map(toHeader);
      for (let i = 1; i < headers.length; i++) {
        if (headers[i]!.parentHash !== headers[i - 1]!.hash) throw new ChainMovedError(`block ${headers[i]!.height} does not link to its parent`);
      }
      const index = new Map(headers.map((h, i) => [h.hash, i]));
      const logsPerBlock: RpcLog[][] = headers.map(() => []);
      if (tokens.size > 0) {
        if (opts.byHash) {
          const lists = await o.logs.byBlockHash(headers.map((h) => h.hash));
          lists.forEach((l, i) => logsPerBlock[i]!.push(...l));
        } else {
          for (const log of await o.logs.byRange(from, to)) {
            const i = index.get(log.blockHash.toLowerCase());
            if (i === undefined) throw new ChainMovedError(`log in block ${log.blockHash} outside the blocks read`);
            logsPerBlock[i]!.push(log);
          }
        }
      }
      const out: ProcessedBlock[] = [];
      for (let i = 0; i < rpcBlocks.length; i++) {
        const b = rpcBlocks[i]!;
        const h = headers[i]!;
        let cands = nativeCandidates(b);
        for (const log of logsPerBlock[i]!) {
          const c = tokenCandidate(log);
          if (c) cands.push(c);
        }
        const natives = cands.filter((c) => c.needsReceipt).map((c) => c.deposit.txHash);
        if (natives.length > 0) {
          const ok = await receiptStatus(b, natives);
          cands = cands.filter((c) => !c.needsReceipt || ok.get(c.deposit.txHash) === true);
        }
        cands.sort((x, y) => x.order[0] - y.order[0] || x.order[1] - y.order[1]);
        out.push({ height: h.height, hash: h.hash, parentHash: h.parentHash, time: h.time, deposits: cands.map((c) => c.deposit) });
      }
      return out;
    },
  };
}
