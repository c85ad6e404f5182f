import { PonteError } from "@ponte/common";
import type { Fragment, Sql, Tx } from "../db/index.js";
import { assertLease, type Identity } from "../agent/lease.js";
import type { Actor } from "../trade/actor.js";
import { canTransition, type TradeStatus } from "../trade/states.js";
import { transition } from "../trade/transition.js";
import { evaluateLocked, evaluateTrades, lockForEvaluation, type EvaluateContext } from "./evaluate.js";

export interface ObservedDeposit {
  txRef: string;
  txHash: string;
  address: string;
  contract: string;
  amount: bigint;
  fromAddress: string;
  rbfSignaled: boolean;
}

export interface ReportedBlock {
  height: bigint;
  hash: string;
  parentHash: string;
  parentHeight: bigint;
  deposits: ObservedDeposit[];
}

export interface Cursor {
  height: bigint;
  hash: string;
  finalizedHeight: bigint;
}

export interface DepositReporting {
  reportBlocks(id: Identity, blocks: ReportedBlock[], head: bigint, finalized: bigint): Promise<Cursor>;
  reportMempool(id: Identity, deposits: ObservedDeposit[], dropped: string[]): Promise<number>;
  reportReorg(id: Identity, ancestor: { height: bigint; hash: string }, orphaned: string[]): Promise<number>;
}

// Trades that still take deposits into their amount; a deposit to any other trade is "late".
const OPEN = ["PENDING", "DEPOSIT_DETECTED"];
// Blocks kept per network for recognising repeated reports and checking reorg ancestors.
export const KEEP_BLOCKS = 2_000n;
// Older blocks are deleted when the cursor crosses a multiple of this, not at every block: one
// DELETE per 100 blocks instead of a statement in every report (bench/README.md, B4), so up to
// KEEP_BLOCKS + PRUNE_EVERY blocks are kept.
export const PRUNE_EVERY = 100n;

export function createDepositReporting(common: { sql: Sql; ctx: EvaluateContext }): DepositReporting {
  const { sql, ctx } = common;
  const agentActor = (network: string): Actor => ({ kind: "agent", id: network });

  /**
   * Stores deposits idempotently on (network, tx_ref), each with its block (none: seen in the
   * mempool), in one statement; returns the trades they touch.
   */
  async function storeDeposits(tx: Tx, network: string, observed: (ObservedDeposit & { block?: { height: bigint; hash: string } })[]): Promise<Set<string>> {
    const touched = new Set<string>();
    // One statement may upsert a row once: a deposit repeated in a report counts at its first sighting.
    const deposits = [...new Map(observed.map((d) => [d.txRef, d] as const).reverse()).values()].reverse();
    if (deposits.length === 0) return touched;
    // Sent at once (not at the await's next tick): callers pipeline statements behind it.
    const rows = await tx<{ tx_ref: string; trade_id: string | null; late: boolean; inserted: boolean }[]>`
      INSERT INTO deposits AS d (network, tx_ref, tx_hash, address, contract, amount, trade_id, status, block_height, block_hash,
                                 rbf_signaled, late, from_address)
      SELECT ${network}, o.tx_ref, o.tx_hash, o.address, o.contract, o.amount::numeric, a.trade_id, 'SEEN',
             NULLIF(o.block_height, '')::bigint, NULLIF(o.block_hash, ''), o.rbf::boolean, COALESCE(t.status <> ALL(${OPEN}), false), o.from_address
        FROM unnest(${deposits.map((d) => d.txRef)}::text[], ${deposits.map((d) => d.txHash)}::text[],
                    ${deposits.map((d) => d.address)}::text[], ${deposits.map((d) => d.contract)}::text[],
                    ${deposits.map((d) => d.amount.toString())}::text[], ${deposits.map((d) => String(d.rbfSignaled))}::text[],
                    ${deposits.map((d) => d.fromAddress)}::text[], ${deposits.map((d) => d.block?.height.toString() ?? "")}::text[],
                    ${deposits.map((d) => d.block?.hash ?? "")}::text[])
             AS o(tx_ref, tx_hash, address, contract, amount, rbf, from_address, block_height, block_hash)
        LEFT JOIN deposit_addresses a ON a.network = ${network} AND a.address = o.address
        LEFT JOIN instant_trades t ON t.id = a.trade_id
      ON CONFLICT (network, tx_ref) DO UPDATE
         SET status = 'SEEN',
             -- A deposit back from a reorg or a drop is where this report says it is (a mempool
             -- report: in no block); its old block must never make it look final.
             block_height = CASE WHEN d.status IN ('REORGED', 'FAILED') THEN EXCLUDED.block_height
                                 ELSE COALESCE(EXCLUDED.block_height, d.block_height) END,
             block_hash = CASE WHEN d.status IN ('REORGED', 'FAILED') THEN EXCLUDED.block_hash
                               ELSE COALESCE(EXCLUDED.block_hash, d.block_hash) END,
             updated_at = now()
       WHERE d.status IN ('SEEN', 'REORGED', 'FAILED')
      RETURNING tx_ref, trade_id, late, (xmax = 0) AS inserted`.execute();
    for (const r of rows) {
      if (!r.trade_id) continue;
      touched.add(r.trade_id);
      if (r.late && r.inserted) {
        ctx.onLateDeposit?.(network);
        ctx.logger.warn({ trade_id: r.trade_id, network, tx_ref: r.tx_ref }, "Late deposit to a closed trade; it needs a refund");
      }
    }
    return touched;
  }

  /** Marks SEEN deposits final by the agent's rule (sent at once, to run after the deposits sent before it). */
  const confirmFinal = (tx: Tx, network: string, finalized: bigint) =>
    tx`UPDATE deposits SET status = 'CONFIRMED', updated_at = now()
        WHERE network = ${network} AND status = 'SEEN' AND block_height <= ${finalized.toString()}`.execute();

  /**
   * The trades a block report may move: those its deposits touch, and those with a deposit
   * detected, waiting for confirmations (or for their deadline, short), which a new block can
   * move without a new deposit. A PENDING trade moves only on a deposit, which touches it anyway;
   * a custodial sell has no deposits, its transfer moves it (transfer/index.ts). A fragment, run
   * after the deposits are stored: it sees them.
   */
  const tradesToEvaluate = (tx: Tx, network: string, txRefs: string[]): Fragment => tx`
    SELECT trade_id FROM deposits WHERE network = ${network} AND tx_ref = ANY(${txRefs}::text[]) AND trade_id IS NOT NULL
    UNION
    SELECT id FROM instant_trades WHERE status = 'DEPOSIT_DETECTED' AND network = ${network} AND source = 'deposit'`;

  async function evaluateAll(tx: Tx, network: string, ids: Iterable<string>, head: bigint): Promise<void> {
    // Locked together in id order: two concurrent reporters (there should be one) never deadlock.
    await evaluateTrades(tx, ctx, ids, head, agentActor(network));
  }

  return {
    async reportBlocks(id, blocks, head, finalized) {
      return sql.begin(async (tx) => {
        // Statements that do not need each other's answers are pipelined (sent together, run in
        // order): a report is five round trips to Postgres (BEGIN; lease and cursor; the writes
        // with the trades they move locked; the transitions; COMMIT) instead of ~15 (bench/README.md, B5).
        const [, [cur]] = await Promise.all([
          assertLease(tx, id, true),
          tx<{ height: bigint; hash: string; finalized_height: bigint; head_height: bigint }[]>`
            SELECT height, hash, finalized_height, head_height FROM chain_cursors WHERE network = ${id.network} FOR UPDATE`.execute(),
        ]);
        let cursor = cur ? { height: cur.height, hash: cur.hash } : undefined;
        // Blocks at or below the cursor may be a repeated report: their stored hashes, read at once.
        const below = cursor ? blocks.filter((b) => b.height <= cursor!.height).map((b) => b.height.toString()) : [];
        const stored = new Map<bigint, string>();
        if (below.length > 0) {
          for (const r of await tx<{ height: bigint; hash: string }[]>`
            SELECT height, hash FROM chain_blocks WHERE network = ${id.network} AND height = ANY(${below}::bigint[])`) {
            stored.set(BigInt(r.height), r.hash);
          }
        }
        const accepted: ReportedBlock[] = [];
        for (const b of blocks) {
          if (cursor && b.height <= cursor.height) {
            const known = accepted.find((a) => a.height === b.height)?.hash ?? stored.get(b.height);
            if (known === b.hash) continue; // a repeated report of a stored block
            throw cursorMismatch(id.network, cursor, b);
          }
          if (cursor && (b.parentHash !== cursor.hash || b.parentHeight !== cursor.height)) throw cursorMismatch(id.network, cursor, b);
          accepted.push(b);
          cursor = { height: b.height, hash: b.hash };
        }
        if (!cursor) throw new PonteError("VALIDATION_ERROR", "The first report must carry at least one block", { network: id.network });
        const fin = maxBig(finalized < cursor.height ? finalized : cursor.height, cur?.finalized_height ?? 0n);
        const headHeight = maxBig(head, cursor.height);
        const deposits = accepted.flatMap((b) => b.deposits.map((d) => ({ ...d, block: { height: b.height, hash: b.hash } })));
        const prune = cursor.height >= KEEP_BLOCKS && cursor.height / PRUNE_EVERY > (cur?.height ?? -1n) / PRUNE_EVERY;
        // One round trip: the writes, then (statements run in the order sent) the trades they may
        // move, locked, with their deposits; the transitions decided from them are the next one.
        const [, , , , , locked] = await Promise.all([
          accepted.length > 0
            ? tx`INSERT INTO chain_blocks (network, height, hash, parent_hash)
                 SELECT ${id.network}, b.height, b.hash, b.parent_hash
                   FROM unnest(${accepted.map((b) => b.height.toString())}::bigint[], ${accepted.map((b) => b.hash)}::text[],
                               ${accepted.map((b) => b.parentHash)}::text[]) AS b(height, hash, parent_hash)`.execute()
            : undefined,
          storeDeposits(tx, id.network, deposits),
          prune
            ? tx`DELETE FROM chain_blocks WHERE network = ${id.network} AND height < ${(cursor.height - KEEP_BLOCKS).toString()}`.execute()
            : undefined,
          tx`
            INSERT INTO chain_cursors (network, height, hash, finalized_height, head_height)
            VALUES (${id.network}, ${cursor.height.toString()}, ${cursor.hash}, ${fin.toString()}, ${headHeight.toString()})
            ON CONFLICT (network) DO UPDATE SET height = EXCLUDED.height, hash = EXCLUDED.hash,
              finalized_height = EXCLUDED.finalized_height, head_height = EXCLUDED.head_height, updated_at = now()`.execute(),
          confirmFinal(tx, id.network, fin),
          lockForEvaluation(tx, tradesToEvaluate(tx, id.network, deposits.map((d) => d.txRef))),
        ]);
        await evaluateLocked(tx, ctx, locked, headHeight, agentActor(id.network));
        return { height: cursor.height, hash: cursor.hash, finalizedHeight: fin };
      });
    },

    async reportMempool(id, deposits, dropped) {
      return sql.begin(async (tx) => {
        await assertLease(tx, id, true);
        const touched = await storeDeposits(tx, id.network, deposits);
        if (dropped.length > 0) {
          const rows = await tx<{ trade_id: string | null }[]>`
            UPDATE deposits SET status = 'FAILED', updated_at = now()
             WHERE network = ${id.network} AND tx_ref = ANY(${dropped}) AND status = 'SEEN' AND block_height IS NULL
            RETURNING trade_id`;
          for (const r of rows) if (r.trade_id) touched.add(r.trade_id);
        }
        const [cur] = await tx<{ head_height: bigint }[]>`SELECT head_height FROM chain_cursors WHERE network = ${id.network}`;
        await evaluateAll(tx, id.network, touched, cur?.head_height ?? 0n);
        return deposits.length + dropped.length;
      });
    },

    async reportReorg(id, ancestor, orphaned) {
      return sql.begin(async (tx) => {
        await assertLease(tx, id, true);
        const [cur] = await tx<{ height: bigint; finalized_height: bigint; head_height: bigint }[]>`
          SELECT height, finalized_height, head_height FROM chain_cursors WHERE network = ${id.network} FOR UPDATE`;
        if (!cur) throw new PonteError("INVALID_STATE", "No cursor to rewind", { network: id.network });
        const [known] = await tx<{ hash: string }[]>`
          SELECT hash FROM chain_blocks WHERE network = ${id.network} AND height = ${ancestor.height.toString()}`;
        if (known && known.hash !== ancestor.hash) {
          throw new PonteError("INVALID_STATE", "The common ancestor is not on the stored chain", {
            network: id.network, height: ancestor.height.toString(), stored_hash: known.hash,
          });
        }
        const above = ancestor.height.toString();
        const finalHit = await tx<{ trade_id: string | null; tx_ref: string }[]>`
          SELECT trade_id, tx_ref FROM deposits WHERE network = ${id.network} AND status = 'CONFIRMED' AND block_height > ${above}`;
        const rows = await tx<{ trade_id: string | null }[]>`
          UPDATE deposits SET status = 'REORGED', block_height = NULL, block_hash = NULL, updated_at = now()
           WHERE network = ${id.network} AND status IN ('SEEN', 'CONFIRMED')
             AND (block_height > ${above} OR (tx_ref = ANY(${orphaned}) AND block_height IS NOT NULL))
          RETURNING trade_id`;
        await tx`DELETE FROM chain_blocks WHERE network = ${id.network} AND height > ${above}`;
        await tx`UPDATE chain_cursors SET height = ${above}, hash = ${ancestor.hash},
                   finalized_height = LEAST(finalized_height, ${above}), updated_at = now()
                 WHERE network = ${id.network}`;
        const touched = new Set(rows.flatMap((r) => (r.trade_id ? [r.trade_id] : [])));
        for (const f of finalHit) {
          // A reorg deeper than the finality rule: what was final is not. Stop the trade and page.
          ctx.logger.error({ network: id.network, tx_ref: f.tx_ref, trade_id: f.trade_id }, "Reorg removed a final deposit");
          if (!f.trade_id) continue;
          const [t] = await tx<{ status: TradeStatus }[]>`SELECT status FROM instant_trades WHERE id = ${f.trade_id} FOR UPDATE`;
          if (t && canTransition(t.status, "MANUAL_REVIEW", "agent")) {
            await transition(tx, ctx.transitions, {
              tradeId: f.trade_id, from: t.status, to: "MANUAL_REVIEW", actor: agentActor(id.network),
              reason: "a reorg deeper than the finality rule removed a final deposit", data: { tx_ref: f.tx_ref },
            });
            touched.delete(f.trade_id);
          }
        }
        await evaluateAll(tx, id.network, touched, cur.head_height);
        return rows.length;
      });
    },
  };
}

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

function cursorMismatch(network: string, cursor: { height: bigint; hash: string }, b: ReportedBlock): PonteError {
  return new PonteError("INVALID_STATE", "The block does not extend the stored cursor; re-read the cursor or report a reorg", {
    network,
    cursor_height: cursor.height.toString(),
    cursor_hash: cursor.hash,
    block_height: b.height.toString(),
    block_parent_hash: b.parentHash,
  });
}
