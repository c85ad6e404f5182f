import type { WatchColumns, WatchEntry } from "../types.js";

/**
 * The watch set's storage, compact: an agent holds every address it watches (a million is
 * normal) and looks up each transaction's recipient, so the entries are kept in typed columns —
 * normalised address → slot, then an interned contract, the deadline as epoch ms (no Date), the
 * derivation index and a case mask per slot — and a WatchEntry is built only for a hit. No trade
 * id: no agent reads it (the coordinator maps an address to its trade), and it was ~44 bytes an
 * address. A WatchEntry object per address (five fields and a Date) cost ~31 MB per 100k
 * addresses. Plain arrays and a mask built with `2 ** i` took 1.4 µs a put at a million, typed
 * columns grown by doubling and a bitwise mask ~1 µs (bench/README.md, B8).
 */
export class WatchStore {
  private readonly slots = new Map<string, number>();
  private capacity = 0;
  /** Slots handed out so far (free ones included). */
  private used = 0;
  /** Index into `contractList`; -1: the native asset. */
  private contracts = new Int32Array(0);
  /** Epoch ms; NaN: no deadline. */
  private until = new Float64Array(0);
  private derivation = new Uint32Array(0);
  /**
   * Where the coordinator's spelling differs from the key only in letter case (an EIP-55
   * checksummed address, keyed lower-case): bit i of the pair (low word: characters 0–31, high:
   * 32–63) set when character i is upper case. Two words per slot instead of a second string: a
   * million checksummed addresses cost ~100 MB more kept as strings (bench/README.md, B8). Both
   * 0: the key as it is.
   */
  private maskLo = new Int32Array(0);
  private maskHi = new Int32Array(0);
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
      slot = this.free.pop() ?? this.newSlot();
      this.slots.set(key, slot);
    }
    this.contracts[slot] = contract;
    this.until[slot] = untilMs;
    this.derivation[slot] = derivationIndex;
    const asKey = address === key;
    const masked = !asKey && setCaseMask(key, address, slot, this.maskLo, this.maskHi);
    if (!masked) {
      this.maskLo[slot] = 0;
      this.maskHi[slot] = 0;
    }
    // Kept as spelled only when it differs from the key beyond case.
    if (!asKey && !masked) this.spelled.set(slot, address);
    else if (this.spelled.size > 0) this.spelled.delete(slot); // most networks never need it
  }

  private newSlot(): number {
    if (this.used === this.capacity) this.grow();
    return this.used++;
  }

  private grow(): void {
    this.capacity = Math.max(1024, this.capacity * 2);
    const widen = <T extends Int32Array | Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(this.capacity);
      next.set(old);
      return next;
    };
    this.contracts = widen(this.contracts, (n) => new Int32Array(n));
    this.until = widen(this.until, (n) => new Float64Array(n));
    this.derivation = widen(this.derivation, (n) => new Uint32Array(n));
    this.maskLo = widen(this.maskLo, (n) => new Int32Array(n));
    this.maskHi = widen(this.maskHi, (n) => new Int32Array(n));
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
      address: this.spelled.get(slot) ?? withCase(key, this.maskLo[slot]!, this.maskHi[slot]!),
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

const MAX_MASKED = 64;

/**
 * Writes the case mask turning `key` into `address` at `slot`; false (nothing written) when they
 * differ in more than case or the key is longer than the mask.
 */
function setCaseMask(key: string, address: string, slot: number, lo: Int32Array, hi: Int32Array): boolean {
  if (key.length !== address.length || key.length > MAX_MASKED) return false;
  let l = 0;
  let h = 0;
  for (let i = 0; i < key.length; i++) {
    const k = key.charCodeAt(i);
    const a = address.charCodeAt(i);
    if (a === k) continue;
    if (k < 97 || k > 122 || a !== k - 32) return false; // only a lower-case letter upper-cased
    if (i < 32) l |= 1 << i;
    else h |= 1 << (i - 32);
  }
  lo[slot] = l;
  hi[slot] = h;
  return true;
}

function withCase(key: string, lo: number, hi: number): string {
  if (lo === 0 && hi === 0) return key;
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const upper = i < 32 ? (lo >>> i) & 1 : (hi >>> (i - 32)) & 1;
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
