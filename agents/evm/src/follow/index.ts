import { BlockWindow, createNextHeight, isCursorMismatch, isLeaseLost, type BlockRef, type Follower, type FollowerContext, type ProcessedBlock } from "@ponte/agent-runtime";
import { childLogger, delay, type Logger } from "@ponte/common";
import { ChainMovedError, createBlockProcessor } from "../block/index.js";
import type { EvmConfig } from "../config/index.js";
import type { LogFetcher } from "../logs/index.js";
import type { HeadWatcher } from "../rpc/heads.js";
import type { EvmRpc } from "../rpc/index.js";
import { toHeader, type Header, type RpcBlock } from "../rpc/types.js";

export interface EvmFollowerDeps {
  config: EvmConfig;
  rpc: EvmRpc;
  heads: HeadWatcher;
  logs: LogFetcher;
  /** The hot wallet: its gas top-ups to deposit addresses are not deposits. */
  ownAddresses?: readonly string[];
}

/** Within this many blocks of the head, token logs are read by block hash instead of by range. */
const AT_HEAD = 4n;
/** Headers compared per round while walking back to the common ancestor. */
const WALK_STEP = 32n;

/** Blocks read from one head, checked against the watch set of one generation. */
interface Batch {
  head: Header;
  finalized: bigint;
  generation: number;
  blocks: ProcessedBlock[];
}

/** A catch-up batch read while the batch before it was being reported. */
interface ReadAhead {
  /** The last block of the batch being reported: the read-ahead is used only if the coordinator acknowledges exactly it. */
  after: BlockRef;
  /** Undefined when there was nothing to read ahead (near the head) or the read failed: the batch is then read again. */
  batch: Promise<Batch | undefined>;
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * The EVM follower of one lease term: catches up from the coordinator's cursor in batches,
 * then follows the head; every batch is reported and the cursor moves only with the
 * coordinator's acknowledgement. A block that does not link to the cursor means a reorg: walk
 * back to the common ancestor, report the orphaned deposits, and read the new chain from there.
 * Deep in catch-up, the next batch is read while one is reported (at most one ahead); it is
 * dropped unless the coordinator acknowledges the block it was read after.
 */
export function createEvmFollower(common: { logger: Logger }, deps: EvmFollowerDeps) {
  return (ctx: FollowerContext): Follower => {
    const { config, rpc, heads } = deps;
    const logger = childLogger(common.logger, { network: config.network });
    const processor = createBlockProcessor({ logger }, { rpc, logs: deps.logs, tokens: config.tokens, watch: ctx.watch, network: config.network, ownAddresses: deps.ownAddresses });
    const window = new BlockWindow();
    let cursor: BlockRef | null = ctx.cursor.block;
    window.reset(cursor);
    /** The highest finalized height reported to (and stored by) the coordinator. */
    let lastFinalized = ctx.cursor.finalizedHeight;
    const nextHeight = createNextHeight(config.startHeight, logger);

    const readHead = async (): Promise<{ head: Header; finalized: bigint }> => {
      // The head the subscription just announced is the node's header: no need to read it back
      // (one round trip fewer per block). Without a fresh one (timeout, socket down) or with a
      // "finalized" rule (that tag needs a read anyway), ask the node.
      if (config.finality.kind === "confirmations") {
        const announced = heads.take();
        if (announced) {
          ctx.metrics.setHead(announced.height);
          return { head: announced, finalized: max(0n, announced.height - BigInt(config.finality.confirmations) + 1n) };
        }
      }
      const wantTag = config.finality.kind === "finalized";
      const reqs = [{ method: "eth_getBlockByNumber", params: ["latest", false] }];
      if (wantTag) reqs.push({ method: "eth_getBlockByNumber", params: ["finalized", false] });
      const [latest, fin] = await rpc.batchOrThrow<RpcBlock<string> | null>(reqs);
      if (!latest) throw new ChainMovedError("the node has no latest block");
      const head = toHeader(latest);
      let finalized: bigint;
      if (config.finality.kind === "confirmations") {
        finalized = max(0n, head.height - BigInt(config.finality.confirmations) + 1n);
      } else {
        finalized = fin ? min(BigInt(fin.number), head.height) : 0n;
      }
      ctx.metrics.setHead(head.height);
      return { head, finalized };
    };

    /**
     * The old chain's hash at each height, walking down: from the window, then by parent hash
     * from the node while it still has the orphaned blocks (anvil forgets them, geth keeps them).
     */
    const oldChain = () => {
      let child: { height: bigint; hash: string; parentHash: string | undefined } | undefined;
      return async (h: bigint): Promise<string | undefined> => {
        const known = window.get(h);
        let hash = known?.hash;
        if (!hash && child && child.height === h + 1n) {
          hash = child.parentHash;
          if (!hash) {
            const b = await rpc.call<RpcBlock<string> | null>("eth_getBlockByHash", [child.hash, false]);
            hash = b?.parentHash.toLowerCase();
          }
        }
        if (!hash) return undefined;
        child = { height: h, hash, parentHash: known?.parentHash };
        return hash;
      };
    };

    const findAncestor = async (tip: BlockRef, floor: bigint): Promise<BlockRef> => {
      const oldHashAt = oldChain();
      let top = tip.height;
      while (top >= floor) {
        const bottom = max(floor, top - WALK_STEP + 1n);
        const heights: bigint[] = [];
        for (let h = bottom; h <= top; h++) heights.push(h);
        const canon = await processor.headers(heights);
        for (let h = top; h >= bottom; h--) {
          const oldHash = await oldHashAt(h);
          if (oldHash === undefined) return fallback(floor);
          const c = canon[Number(h - bottom)];
          if (c && c.hash === oldHash) return { height: h, hash: c.hash };
        }
        top = bottom - 1n;
      }
      return fallback(floor);
    };

    // Below what this process knows of the old chain, the finalized height is the ancestor: by
    // the network's rule the chains agree there. The coordinator orphans its deposits above it.
    const fallback = async (floor: bigint): Promise<BlockRef> => {
      const [h] = await processor.headers([floor]);
      if (!h) throw new ChainMovedError(`no block at the finalized height ${floor}`);
      logger.warn({ block_number: floor.toString() }, "Old chain unknown below the window; using the finalized block as the common ancestor");
      return { height: h.height, hash: h.hash };
    };

    const handleReorg = async () => {
      const tip = cursor!;
      const floor = min(lastFinalized, tip.height);
      const ancestor = await findAncestor(tip, floor);
      const orphaned = window.txRefsAbove(ancestor.height);
      const depth = Number(tip.height - ancestor.height);
      if (ancestor.height < lastFinalized) {
        logger.error({ block_number: ancestor.height.toString(), finalized_height: lastFinalized.toString() }, "Reorg below the finalized height");
      }
      logger.warn(
        { old_tip: tip.height.toString(), old_hash: tip.hash, common_ancestor: ancestor.height.toString(), depth, orphaned: orphaned.length },
        "Reorg detected",
      );
      await ctx.reportReorg({ ancestor, orphanedTxRefs: orphaned, depth });
      window.rewindTo(ancestor);
      cursor = ancestor;
    };

    /** With nothing new to read: is the cursor block still the node's block at its height? */
    const tipStillCanonical = async (head: Header): Promise<boolean> => {
      if (!cursor) return true;
      if (head.height === cursor.height) return head.hash === cursor.hash;
      if (head.height < cursor.height) {
        // A node behind us (a fallback endpoint, a lagging replica) is not a reorg as long as its
        // head is our block at that height; a shorter chain shows up when blocks stop linking.
        const ours = window.get(head.height);
        return !ours || ours.hash === head.hash;
      }
      const [h] = await processor.headers([cursor.height]);
      return !!h && h.hash === cursor.hash;
    };

    let ahead: ReadAhead | undefined;

    /**
     * Reads the catch-up batch starting at `from` (fetch and process), as the next turn of the
     * loop would once `after` is acknowledged. Near the head it reads nothing: there the next
     * batch is read by hash, after the acknowledgement, as without read-ahead.
     */
    const readAhead = (after: BlockRef, from: bigint): ReadAhead => {
      const batch = (async (): Promise<Batch | undefined> => {
        const { head, finalized } = await readHead();
        if (head.height - from < AT_HEAD) return undefined;
        const generation = ctx.watch.generation;
        const blocks = await processor.process(from, min(head.height, from + BigInt(config.batchSize) - 1n));
        return { head, finalized, generation, blocks };
      })().catch((err: unknown) => {
        logger.debug({ err, block_number: from.toString() }, "Reading ahead failed; reading the batch again after the acknowledgement");
        return undefined;
      });
      return { after, batch };
    };

    /**
     * The read-ahead batch if it was read after the current cursor. Always waits for it to
     * settle, so that two reads never overlap and at most one batch is held ahead.
     */
    const takeAhead = async (): Promise<Batch | undefined> => {
      const a = ahead;
      ahead = undefined;
      if (!a) return undefined;
      const b = await a.batch;
      if (!b || !cursor || cursor.height !== a.after.height || cursor.hash !== a.after.hash) return undefined;
      return b;
    };

    return {
      async run() {
        const { signal } = ctx;
        let failures = 0;
        while (!signal.aborted) {
          try {
            await ctx.watch.waitSynced(signal);
            if (signal.aborted) break;
            let batch = await takeAhead();
            if (!batch) {
              // A head announced from here on wakes the wait below, even one that lands while
              // the chain is read (it used to be slept through: pollIntervalMs, 2 s by default).
              const seen = heads.seq;
              const { head, finalized } = await readHead();
              const next = nextHeight(cursor, head.height);
              if (next > head.height) {
                if (!(await tipStillCanonical(head))) {
                  await handleReorg();
                  continue;
                }
                failures = 0;
                await heads.next(config.pollIntervalMs, signal, seen);
                continue;
              }
              const to = min(head.height, next + BigInt(config.batchSize) - 1n);
              const generation = ctx.watch.generation;
              const blocks = await processor.process(next, to, { byHash: head.height - next < AT_HEAD, tip: head });
              batch = { head, finalized, generation, blocks };
            }
            const { head, finalized, blocks } = batch;
            // The watch set was re-snapshotted while we scanned: it may have missed an address.
            if (ctx.watch.generation !== batch.generation || !ctx.watch.synced) continue;
            if (cursor && blocks[0]!.parentHash !== cursor.hash) {
              await handleReorg();
              continue;
            }
            const last = blocks[blocks.length - 1]!;
            // Deep in catch-up, the next batch is read while the coordinator stores this one rather
            // than after it (B2: the report was waited for in series, ~15 % of the catch-up).
            if (head.height - (last.height + 1n) >= AT_HEAD) ahead = readAhead({ height: last.height, hash: last.hash }, last.height + 1n);
            const ack = await ctx.report(blocks, { height: head.height, hash: head.hash }, finalized);
            // Only a finalized height the coordinator accepted bounds later walks back: one read
            // from a head that is already on another chain could be above the fork.
            if (finalized > lastFinalized) lastFinalized = finalized;
            if (ack.block && ack.block.height === last.height && ack.block.hash === last.hash) {
              window.add(blocks);
              window.prune(lastFinalized);
              cursor = ack.block;
            } else {
              logger.warn({ cursor_height: ack.block?.height.toString() ?? null }, "The coordinator acknowledged another cursor; resuming from it");
              cursor = ack.block;
              window.reset(cursor);
            }
            failures = 0;
          } catch (err) {
            if (signal.aborted) break;
            if (isLeaseLost(err)) throw err;
            // What was read ahead of a failed turn is not used: the next turn starts from the cursor.
            await takeAhead();
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
            const waitMs = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
            logger.warn({ err, attempt: failures, wait_ms: waitMs, endpoint: rpc.endpoint }, "Following failed; retrying from the cursor");
            await delay(waitMs, signal);
          }
        }
      },
    };
  };
}
