import type { WatchEntry, WatchRow } from "../types.js";

/**
 * The watch set's storage, compact: an agent holds every address it watches (a million is
 * normal) and looks up each transaction's recipient, so the entries are kept in columns —
 * normalised address → slot, then an interned contract, the deadline as epoch ms (no Date) and
 * the derivation index per slot — and a WatchEntry is built only for a hit. No trade id: no agent
 * reads it (the coordinator maps an address to its trade), and it was ~44 bytes an address.
 * A WatchEntry object per address (five fields and a Date) cost ~31 MB per 100k addresses
 * (bench/README.md, B8).
 */
export class WatchStore {
  private readonly slots = new Map<string, number>();
  /** Index into `contractList`; -1: the native asset. */
  private readonly contracts: number[] = [];
  /** Epoch ms; NaN: no deadline. */
  private readonly until: number[] = [];
  private readonly derivation: number[] = [];
  /** The address as the coordinator spelled it, only where that differs from its key. */
  private readonly spelled = new Map<number, string>();
  private readonly free: number[] = [];
  private readonly contractList: string[] = [];
  private readonly contractIndex = new Map<string, number>();

  get size(): number {
    return this.slots.size;
  }

  set(key: string, e: WatchRow): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.contracts.length;
      this.slots.set(key, slot);
    }
    this.contracts[slot] = e.contract === null ? -1 : this.intern(e.contract);
    this.until[slot] = e.watchUntilMs;
    this.derivation[slot] = e.derivationIndex;
    if (e.address !== key) this.spelled.set(slot, e.address);
    else this.spelled.delete(slot);
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.spelled.delete(slot);
    this.free.push(slot);
  }

  get(key: string): WatchEntry | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.entry(key, slot);
  }

  /** Every entry, built on demand. */
  entries(): WatchEntry[] {
    const out: WatchEntry[] = [];
    for (const [key, slot] of this.slots) out.push(this.entry(key, slot));
    return out;
  }

  private entry(key: string, slot: number): WatchEntry {
    const c = this.contracts[slot]!;
    const ms = this.until[slot]!;
    return {
      address: this.spelled.get(slot) ?? key,
      contract: c < 0 ? null : this.contractList[c]!,
      watchUntil: Number.isNaN(ms) ? null : new Date(ms),
      derivationIndex: this.derivation[slot]!,
    };
  }

  private intern(contract: string): number {
    let i = this.contractIndex.get(contract);
    if (i === undefined) {
      i = this.contractList.length;
      this.contractList.push(contract);
      this.contractIndex.set(contract, i);
    }
    return i;
  }
}

/** A row as a WatchEntry (for the few that a live change carries). */
export const toEntry = (r: WatchRow): WatchEntry => ({
  address: r.address,
  contract: r.contract,
  watchUntil: Number.isNaN(r.watchUntilMs) ? null : new Date(r.watchUntilMs),
  derivationIndex: r.derivationIndex,
});
