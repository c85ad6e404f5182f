// The reorg window every family's follower keeps (moved here from agents/evm so the UTXO agent
// shares it; agents/evm still has its own copy until it imports this one).
import type { BlockRef, ProcessedBlock } from "../types.js";

interface Entry {
  hash: string;
  parentHash: string | undefined;
  /** Deposits reported in this block; null when reported before this process started. */
  txRefs: string[] | null;
}

/**
 * The unfinalized blocks this agent reported, linked by parent hash: what a reorg is checked
 * against and what tells which deposits it orphaned.
 */
export class BlockWindow {
  private readonly blocks = new Map<bigint, Entry>();
  private low: bigint | undefined;
  private high: bigint | undefined;

  /** Starts from the coordinator's cursor block (its deposits are not known here). */
  reset(cursor: BlockRef | null): void {
    this.blocks.clear();
    this.low = this.high = undefined;
    if (cursor) {
      this.blocks.set(cursor.height, { hash: cursor.hash, parentHash: undefined, txRefs: null });
      this.low = this.high = cursor.height;
    }
  }

  add(blocks: ProcessedBlock[]): void {
    for (const b of blocks) {
      const parent = this.blocks.get(b.height - 1n);
      if (this.high !== undefined && (b.height !== this.high + 1n || (parent && parent.hash !== b.parentHash))) {
        throw new Error(`block ${b.height} does not extend the window at ${this.high}`);
      }
      this.blocks.set(b.height, { hash: b.hash, parentHash: b.parentHash, txRefs: b.deposits.map((d) => d.txRef) });
      this.low ??= b.height;
      this.high = b.height;
    }
  }

  get(height: bigint): { hash: string; parentHash: string | undefined } | undefined {
    return this.blocks.get(height);
  }

  get lowest(): bigint | undefined {
    return this.low;
  }

  get highest(): bigint | undefined {
    return this.high;
  }

  /** Deposits this agent reported above height (the ones a reorg to that ancestor orphans). */
  txRefsAbove(height: bigint): string[] {
    const out: string[] = [];
    if (this.high === undefined) return out;
    for (let h = height + 1n; h <= this.high; h++) out.push(...(this.blocks.get(h)?.txRefs ?? []));
    return out;
  }

  /** Drops everything above height (after a reorg to that ancestor). */
  truncateAbove(height: bigint): void {
    if (this.high === undefined) return;
    for (let h = this.high; h > height; h--) this.blocks.delete(h);
    if (this.low !== undefined && height < this.low) {
      this.low = this.high = undefined;
      return;
    }
    this.high = height;
  }

  /** After a reorg: keeps the blocks up to the ancestor, or restarts from it when it is below the window. */
  rewindTo(ancestor: BlockRef): void {
    const known = this.blocks.get(ancestor.height);
    if (known && known.hash === ancestor.hash) this.truncateAbove(ancestor.height);
    else this.reset(ancestor);
  }

  /** Forgets blocks below the finalized height: no reorg reaches them (the finalized block stays as an anchor). */
  prune(finalizedHeight: bigint): void {
    if (this.low === undefined || this.high === undefined) return;
    const keepFrom = finalizedHeight < this.high ? finalizedHeight : this.high;
    for (let h = this.low; h < keepFrom; h++) this.blocks.delete(h);
    if (keepFrom > this.low) this.low = keepFrom;
  }
}
