import type { WatchColumns, WatchEntry } from "../types.js";

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
  /**
   * Where the coordinator's spelling differs from the key only in letter case (an EIP-55
   * checksummed address, keyed lower-case): bit i set when character i is upper case. A number
   * per slot instead of a second string: a million checksummed addresses cost ~100 MB more
   * kept as strings (bench/README.md, B8). 0: the key as it is.
   */
  private readonly caseMask: number[] = [];
  /** The address as the coordinator spelled it, where that differs from its key otherwise. */
  private readonly spelled = new Map<number, string>();
  private readonly free: number[] = [];
  private readonly contractList: string[] = [];
  private readonly contractIndex = new Map<string, number>();

  get size(): number {
    return this.slots.size;
  }

  /** Stores a batch from the stream, each address under normalize(address). */
  add(batch: WatchColumns, normalize: (address: string) => string): void {
    // The batch's contract table mapped once to this store's interned indexes.
    const local = batch.contracts.map((c) => this.intern(c));
    const { address, contract, watchUntilMs, derivationIndex } = batch;
    for (let i = 0; i < address.length; i++) {
      const a = address[i]!;
      const c = contract[i]!;
      this.put(normalize(a), a, c < 0 ? -1 : local[c]!, watchUntilMs[i]!, derivationIndex[i]!);
    }
  }

  private put(key: string, address: string, contract: number, untilMs: number, derivationIndex: number): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.contracts.length;
      this.slots.set(key, slot);
    }
    this.contracts[slot] = contract;
    this.until[slot] = untilMs;
    this.derivation[slot] = derivationIndex;
    const mask = address === key ? 0 : caseMaskOf(key, address);
    this.caseMask[slot] = Math.max(mask, 0);
    if (mask < 0) this.spelled.set(slot, address);
    else if (this.spelled.size > 0) this.spelled.delete(slot); // most networks never need it
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
      address: this.spelled.get(slot) ?? withCase(key, this.caseMask[slot]!),
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

// Bits up to 2^52 are exact in a double.
const MAX_MASKED = 53;

/** The case mask turning `key` into `address`, or -1 when they differ in more than case. */
function caseMaskOf(key: string, address: string): number {
  if (key.length !== address.length || key.length > MAX_MASKED) return -1;
  let mask = 0;
  for (let i = 0; i < key.length; i++) {
    const k = key.charCodeAt(i);
    const a = address.charCodeAt(i);
    if (a === k) continue;
    if (k < 97 || k > 122 || a !== k - 32) return -1; // only a lower-case letter upper-cased
    mask += 2 ** i;
  }
  return mask;
}

function withCase(key: string, mask: number): string {
  if (mask === 0) return key;
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const upper = Math.floor(mask / 2 ** i) % 2 === 1;
    out += upper ? key[i]!.toUpperCase() : key[i]!;
  }
  return out;
}

/** A batch's entries as objects (for the few addresses that a live change carries). */
export const entriesOf = (batch: WatchColumns): WatchEntry[] =>
  batch.address.map((address, i) => {
    const c = batch.contract[i]!;
    const ms = batch.watchUntilMs[i]!;
    return {
      address,
      contract: c < 0 ? null : batch.contracts[c]!,
      watchUntil: Number.isNaN(ms) ? null : new Date(ms),
      derivationIndex: batch.derivationIndex[i]!,
    };
  });
