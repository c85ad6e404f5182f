import type { Deposit, ProcessedBlock, WatchView } from "@ponte/agent-runtime";
import { childLogger, type Logger } from "@ponte/common";
import { getAddress } from "ethers";
import type { TokenConfig } from "../config/index.js";
import type { LogFetcher } from "../logs/index.js";
import { METHOD_NOT_FOUND, RpcError, toHex, type EvmRpc, type RpcRequest } from "../rpc/index.js";
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
   * With byHash and `tip` (the head's header) for a range of that one block, the block, its logs
   * and its receipts come in one JSON-RPC batch by the head's hash.
   */
  process(from: bigint, to: bigint, opts?: { byHash?: boolean; tip?: Header }): Promise<ProcessedBlock[]>;
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
  const logger = childLogger(common.logger, { network: o.network });
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

  /** Success flags of txHashes from one block's receipts (a node without eth_getBlockReceipts: one by one). */
  const statusFrom = (block: RpcBlock, txHashes: string[], all: RpcReceipt[] | null, status: Map<string, boolean>) => {
    if (!all) throw new ChainMovedError(`block ${block.hash} has no receipts on the node`);
    const wanted = new Set(txHashes);
    for (const r of all) if (wanted.has(r.transactionHash.toLowerCase())) take(block, r, status);
    for (const h of txHashes) if (!status.has(h)) throw new ChainMovedError(`no receipt for ${h} in block ${block.hash}`);
  };
  const take = (block: RpcBlock, r: RpcReceipt | null, status: Map<string, boolean>) => {
    if (!r) throw new ChainMovedError(`receipt missing in block ${block.hash}`);
    if (r.blockHash.toLowerCase() !== block.hash.toLowerCase()) throw new ChainMovedError(`receipt of ${r.transactionHash} is in another block`);
    // Receipts before Byzantium have no status; those transactions did not revert value transfers.
    status.set(r.transactionHash.toLowerCase(), r.status === undefined || BigInt(r.status) === 1n);
  };
  const noteReceiptsError = (err: RpcError) => {
    if (err.code === METHOD_NOT_FOUND && blockReceipts !== false) {
      blockReceipts = false;
      logger.info("The node has no eth_getBlockReceipts; reading receipts one by one");
    }
  };

  /**
   * Success flags for the candidates' transactions of several blocks: every block's receipts in
   * one JSON-RPC batch (they used to be read block after block), `prefetched` ones not read again.
   */
  const receiptStatus = async (
    wanted: { block: RpcBlock; txHashes: string[] }[],
    prefetched: Map<string, RpcReceipt[] | null>,
  ): Promise<Map<string, boolean>> => {
    const status = new Map<string, boolean>();
    let rest = wanted;
    if (blockReceipts !== false) {
      rest = [];
      const fetch = wanted.filter((w) => !prefetched.has(w.block.hash));
      const answers = await o.rpc.batch(fetch.map((w) => ({ method: "eth_getBlockReceipts", params: [w.block.hash] })));
      const got = new Map(prefetched);
      answers.forEach((a, i) => {
        if (a.ok) got.set(fetch[i]!.block.hash, a.result as RpcReceipt[] | null);
        else noteReceiptsError(a.error);
      });
      for (const w of wanted) {
        if (got.has(w.block.hash)) {
          statusFrom(w.block, w.txHashes, got.get(w.block.hash)!, status);
          blockReceipts = true;
        } else rest.push(w);
      }
    }
    if (rest.length > 0) {
      const hashes = rest.flatMap((w) => w.txHashes.map((h) => ({ block: w.block, h })));
      const rs = await o.rpc.batchOrThrow<RpcReceipt | null>(hashes.map((x) => ({ method: "eth_getTransactionReceipt", params: [x.h] })));
      rs.forEach((r, i) => take(hashes[i]!.block, r, status));
    }
    return status;
  };

  /**
   * The block at the head, its token logs and (speculatively) its receipts in one JSON-RPC batch,
   * by the hash the head announced: one round trip per new block instead of three or four.
   */
  const fetchTip = async (tip: Header): Promise<{ block: RpcBlock; logs: RpcLog[]; receipts: RpcReceipt[] | null | undefined }> => {
    const reqs: RpcRequest[] = [{ method: "eth_getBlockByHash", params: [tip.hash, true] }];
    const logsReq = tokens.size > 0 ? o.logs.blockHashRequest(tip.hash) : undefined;
    if (logsReq) reqs.push(logsReq);
    const withReceipts = blockReceipts !== false;
    if (withReceipts) reqs.push({ method: "eth_getBlockReceipts", params: [tip.hash] });
    const rs = await o.rpc.batch(reqs);
    const [b, l] = rs;
    if (!b!.ok) throw b!.error;
    const block = b!.result as RpcBlock | null;
    if (!block) throw new ChainMovedError(`block ${tip.hash} is not on the node (any more)`);
    let logs: RpcLog[] = [];
    if (logsReq) {
      if (!l!.ok) throw l!.error;
      logs = l!.result as RpcLog[];
    }
    let receipts: RpcReceipt[] | null | undefined;
    if (withReceipts) {
      const r = rs[rs.length - 1]!;
      if (r.ok) receipts = r.result as RpcReceipt[] | null;
      else noteReceiptsError(r.error);
    }
    return { block, logs, receipts };
  };

  return {
    async headers(heights) {
      const bs = await o.rpc.batchOrThrow<RpcBlock<string> | null>(heights.map((h) => ({ method: "eth_getBlockByNumber", params: [toHex(h), false] })));
      return bs.map((b) => (b ? toHeader(b) : null));
    },
    async process(from, to, opts = {}) {
      let rpcBlocks: RpcBlock[];
      let logsPerBlock: RpcLog[][];
      const prefetched = new Map<string, RpcReceipt[] | null>();
      if (opts.byHash && opts.tip && from === to && opts.tip.height === to) {
        const t = await fetchTip(opts.tip);
        rpcBlocks = [t.block];
        logsPerBlock = [t.logs.filter((log) => log.blockHash.toLowerCase() === opts.tip!.hash)];
        if (t.receipts !== undefined) prefetched.set(t.block.hash, t.receipts);
      } else {
        rpcBlocks = await fetchBlocks(from, to);
        logsPerBlock = rpcBlocks.map(() => []);
      }
      const headers = rpcBlocks.map(toHeader);
      for (let i = 1; i < headers.length; i++) {
        if (headers[i]!.parentHash !== headers[i - 1]!.hash) throw new ChainMovedError(`block ${headers[i]!.height} does not link to its parent`);
      }
      const index = new Map(headers.map((h, i) => [h.hash, i]));
      if (tokens.size > 0 && !(opts.tip && from === to && opts.byHash && opts.tip.height === to)) {
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
      const candidates: Candidate[][] = [];
      const needReceipts: { block: RpcBlock; txHashes: string[] }[] = [];
      for (let i = 0; i < rpcBlocks.length; i++) {
        const b = rpcBlocks[i]!;
        const cands = nativeCandidates(b);
        for (const log of logsPerBlock[i]!) {
          const c = tokenCandidate(log);
          if (c) cands.push(c);
        }
        candidates.push(cands);
        const natives = cands.filter((c) => c.needsReceipt).map((c) => c.deposit.txHash);
        if (natives.length > 0) needReceipts.push({ block: b, txHashes: natives });
      }
      const ok = needReceipts.length > 0 ? await receiptStatus(needReceipts, prefetched) : new Map<string, boolean>();
      const out: ProcessedBlock[] = [];
      for (let i = 0; i < rpcBlocks.length; i++) {
        const h = headers[i]!;
        const cands = candidates[i]!.filter((c) => !c.needsReceipt || ok.get(c.deposit.txHash) === true);
        cands.sort((x, y) => x.order[0] - y.order[0] || x.order[1] - y.order[1]);
        out.push({ height: h.height, hash: h.hash, parentHash: h.parentHash, time: h.time, deposits: cands.map((c) => c.deposit) });
      }
      return out;
    },
  };
}
