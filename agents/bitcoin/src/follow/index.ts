// The UTXO follower of one lease term: catches up from the coordinator's cursor in batches of
// blocks, then polls the best block hash; every batch is reported and the cursor moves only
// with the coordinator's acknowledgement. A block that does not link to the cursor means a
// reorg: the old chain is walked back by parent hash (the node keeps stale headers, with
// confirmations -1) to the common ancestor, the deposits above it are reported orphaned, and the
// new chain is read from there. The mempool is polled beside it.
// During catch-up the next batch is read (fetched and attributed) while the current one is being
// reported: at most one batch ahead, used only if it starts right after the acknowledged cursor
// and the watch set did not change meanwhile; anything else (reorg, a moved chain, another
// cursor, a failure) discards it and reads again as if it had never been made.
import { BlockWindow, createNextHeight, isCursorMismatch, isLeaseLost, type BlockRef, type Follower, type FollowerContext } from "@ponte/agent-runtime";
import { childLogger, delay, PonteError, type Logger } from "@ponte/common";
import type { UtxoConfig } from "../config/index.js";
import { createMempoolTracker, type MempoolMetrics, type MempoolTracker } from "../mempool/index.js";
import type { UtxoRpc } from "../rpc/index.js";
import { ChainMovedError, createBlockSource, type ProcessedRange, type ScriptReader } from "./blocks.js";

export { ChainMovedError, createBlockSource, depositsOf, type BlockSource, type ProcessedRange, type ScriptReader } from "./blocks.js";

export interface UtxoFollowerDeps {
  config: UtxoConfig;
  rpc: UtxoRpc;
  readScript: ScriptReader;
  /** Follow the mempool and report unconfirmed deposits (through the term's reporter). */
  mempool: boolean;
  mempoolMetrics?: MempoolMetrics;
  /** The tracker of the current term, for tests. */
  onTracker?: (t: MempoolTracker) => void;
}

/**
 * A busy node (its -rpcworkqueue full) answers again within moments: short backoff, capped at
 * 2 s. An unreachable or failing one gets the long one, up to 30 s.
 */
export function backoffMs(failures: number, reason: unknown): number {
  if (reason === "work_queue_full") return Math.min(2_000, 50 * 2 ** Math.min(failures, 6));
  return Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** A batch read ahead of the cursor; its outcome is held, not thrown, until the loop takes it. */
interface ReadAhead {
  from: bigint;
  to: bigint;
  /** The watch set's generation when the read started. */
  generation: number;
  outcome: Promise<{ ok: true; range: ProcessedRange } | { ok: false; error: unknown }>;
}

export function createUtxoFollower(common: { logger: Logger }, deps: UtxoFollowerDeps) {
  return (ctx: FollowerContext): Follower => {
    const { config, rpc } = deps;
    const logger = childLogger(common.logger, { network: config.network });
    const source = createBlockSource({ rpc, watch: ctx.watch, readScript: deps.readScript, useRest: config.restUrl !== null });
    const tracker = deps.mempool
      ? createMempoolTracker({ logger }, { rpc, watch: ctx.watch, readScript: deps.readScript, report: ctx.reportMempool, metrics: deps.mempoolMetrics })
      : undefined;
    if (tracker) deps.onTracker?.(tracker);
    const window = new BlockWindow();
    let cursor: BlockRef | null = ctx.cursor.block;
    window.reset(cursor);
    let lastFinalized = ctx.cursor.finalizedHeight;
    const nextHeight = createNextHeight(config.startHeight, logger);
    const conf = BigInt(config.confirmations);
    let ahead: ReadAhead | undefined;

    const readAhead = (from: bigint, to: bigint) => {
      // A discarded read's failure is not reported: the range is read again, and fails there if it still does.
      const outcome = source.process(from, to).then(
        (range) => ({ ok: true as const, range }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      ahead = { from, to, generation: ctx.watch.generation, outcome };
    };

    /**
     * Blocks next..to (or fewer) with the watch set's generation they were attributed with: pre,
     * the read-ahead, when it starts at next, stays within to and its last block is still on the
     * active chain (its blocks link, so then all are: as good as a read made now); else a fresh read.
     */
    const readBatch = async (pre: ReadAhead | undefined, next: bigint, to: bigint): Promise<{ range: ProcessedRange; generation: number }> => {
      if (pre && pre.from === next && pre.to <= to) {
        const o = await pre.outcome;
        if (!o.ok) throw o.error;
        const last = o.range.blocks[o.range.blocks.length - 1]!;
        if ((await source.hashAt(last.height)) === last.hash) return { range: o.range, generation: pre.generation };
        logger.debug({ block_number: last.height.toString() }, "The chain moved under the read-ahead; reading again");
      }
      const generation = ctx.watch.generation;
      return { range: await source.process(next, to), generation };
    };

    const readHead = async (): Promise<{ head: BlockRef; finalized: bigint }> => {
      const hash = await rpc.call<string>("getbestblockhash");
      const h = await source.header(hash);
      if (!h) throw new ChainMovedError("the best block has no header");
      const head = { height: BigInt(h.height), hash: h.hash };
      ctx.metrics.setHead(head.height);
      return { head, finalized: max(0n, head.height - conf + 1n) };
    };

    /**
     * The highest block of the old chain (from the cursor down) that is still on the node's
     * active chain. Bitcoin Core keeps stale blocks' headers with confirmations -1, so the old
     * chain is walked by parent hash, whatever this process remembers of it.
     */
    const findAncestor = async (tip: BlockRef): Promise<BlockRef> => {
      let hash: string | undefined = tip.hash;
      for (let steps = 0; hash && steps <= config.reorgWindow * 10; steps++) {
        const h = await source.header(hash);
        if (!h) break;
        if (h.confirmations >= 0) return { height: BigInt(h.height), hash: h.hash };
        hash = h.previousblockhash;
      }
      // Unknown to the node (a different node behind the same URL): fall back to the finalized block.
      const floor = min(lastFinalized, tip.height);
      const [f] = await source.headers([floor]);
      if (!f) throw new ChainMovedError(`no block at the finalized height ${floor}`);
      logger.warn({ block_number: floor.toString() }, "Old chain unknown to the node; using the finalized block as the common ancestor");
      return { height: BigInt(f.height), hash: f.hash };
    };

    const handleReorg = async () => {
      const tip = cursor!;
      const ancestor = await findAncestor(tip);
      const orphaned = window.txRefsAbove(ancestor.height);
      const depth = Number(tip.height - ancestor.height);
      if (ancestor.height < lastFinalized) {
        logger.error({ block_number: ancestor.height.toString(), finalized_height: lastFinalized.toString() }, "Reorg below the finalized height");
      }
      logger.warn({ old_tip: tip.height.toString(), old_hash: tip.hash, common_ancestor: ancestor.height.toString(), depth, orphaned: orphaned.length }, "Reorg detected");
      await ctx.reportReorg({ ancestor, orphanedTxRefs: orphaned, depth });
      tracker?.orphaned(orphaned);
      window.rewindTo(ancestor);
      cursor = ancestor;
    };

    async function followBlocks(signal: AbortSignal): Promise<void> {
      let failures = 0;
      let lastBest: string | undefined;
      while (!signal.aborted) {
        // The read-ahead serves only the iteration right after the one that started it.
        const pre = ahead;
        ahead = undefined;
        try {
          await ctx.watch.waitSynced(signal);
          if (signal.aborted) break;
          // At the head: one cheap call per poll until the best block changes.
          if (cursor && lastBest === cursor.hash) {
            const best = await rpc.call<string>("getbestblockhash");
            if (best === cursor.hash) {
              failures = 0;
              await delay(config.pollIntervalMs, signal);
              continue;
            }
          }
          const { head, finalized } = await readHead();
          const next = nextHeight(cursor, head.height);
          if (next > head.height) {
            if (cursor && head.hash !== cursor.hash) {
              // Same height or shorter, another hash: is our tip still on the active chain?
              const h = await source.header(cursor.hash);
              if (!h || h.confirmations < 0) {
                await handleReorg();
                continue;
              }
            }
            lastBest = head.hash;
            failures = 0;
            await delay(config.pollIntervalMs, signal);
            continue;
          }
          const batch = BigInt(config.batchSize);
          const to = min(head.height, next + batch - 1n);
          const { range, generation } = await readBatch(pre, next, to);
          const { blocks, txids } = range;
          if (ctx.watch.generation !== generation || !ctx.watch.synced) continue;
          if (cursor && blocks[0]!.parentHash !== cursor.hash) {
            await handleReorg();
            continue;
          }
          const last = blocks[blocks.length - 1]!;
          if (last.height < head.height) readAhead(last.height + 1n, min(head.height, last.height + batch));
          const ack = await ctx.report(blocks, head, finalized);
          tracker?.mined(
            txids.flat(),
            blocks.flatMap((b) => b.deposits.map((d) => d.txRef)),
          );
          if (finalized > lastFinalized) lastFinalized = finalized;
          if (ack.block && ack.block.height === last.height && ack.block.hash === last.hash) {
            window.add(blocks);
            window.prune(min(lastFinalized, last.height - BigInt(config.reorgWindow)));
            cursor = ack.block;
          } else {
            logger.warn({ cursor_height: ack.block?.height.toString() ?? null }, "The coordinator acknowledged another cursor; resuming from it");
            ahead = undefined;
            cursor = ack.block;
            window.reset(cursor);
          }
          lastBest = undefined;
          failures = 0;
        } catch (err) {
          ahead = undefined;
          if (signal.aborted) break;
          if (isLeaseLost(err)) throw err;
          if (err instanceof ChainMovedError) {
            logger.debug({ reason: err.message }, "The chain moved while reading; reading again");
            await delay(Math.min(config.pollIntervalMs, 250), signal);
            continue;
          }
          if (isCursorMismatch(err)) {
            const c = await ctx.getCursor();
            logger.warn({ cursor_height: c.block?.height.toString() ?? null, details: err.details }, "Cursor mismatch; resuming from the coordinator's cursor");
            cursor = c.block;
            window.reset(cursor);
            if (c.finalizedHeight > lastFinalized) lastFinalized = c.finalizedHeight;
            continue;
          }
          failures++;
          const reason = err instanceof PonteError ? err.details.reason : undefined;
          const waitMs = backoffMs(failures, reason);
          logger.warn({ err, reason, attempt: failures, wait_ms: waitMs, endpoint: rpc.endpoint }, "Following failed; backing off and retrying from the cursor");
          await delay(waitMs, signal);
        }
      }
    }

    async function followMempool(signal: AbortSignal): Promise<void> {
      if (!tracker) return;
      let failures = 0;
      while (!signal.aborted) {
        try {
          await ctx.watch.waitSynced(signal);
          if (signal.aborted) break;
          await tracker.poll();
          failures = 0;
          await delay(config.mempoolIntervalMs, signal);
        } catch (err) {
          if (signal.aborted) break;
          if (isLeaseLost(err)) throw err;
          failures++;
          const reason = err instanceof PonteError ? err.details.reason : undefined;
          const waitMs = backoffMs(failures, reason);
          logger.warn({ err, reason, attempt: failures, wait_ms: waitMs }, "Mempool poll failed; backing off");
          await delay(waitMs, signal);
        }
      }
    }

    return {
      async run() {
        // Either loop failing for good (a lost lease) ends the term's follower; the other stops with it.
        const ac = new AbortController();
        const stop = () => ac.abort();
        ctx.signal.addEventListener("abort", stop, { once: true });
        try {
          await Promise.all([followBlocks(ac.signal), followMempool(ac.signal)].map((p) => p.catch((err) => (ac.abort(), Promise.reject(err)))));
        } finally {
          ctx.signal.removeEventListener("abort", stop);
        }
      },
    };
  };
}
