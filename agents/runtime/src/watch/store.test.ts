import { describe, expect, it } from "vitest";
import type { WatchColumns } from "../types.js";
import { entriesOf, WatchStore } from "./store.js";

const lower = (a: string) => a.toLowerCase();
const UNTIL = Date.parse("2030-01-02T03:04:05.678Z");

/** A batch of one address per entry, as the stream carries it. */
function batch(...rows: { address: string; contract?: string; untilMs?: number; index?: number }[]): WatchColumns {
  const contracts = [...new Set(rows.flatMap((r) => (r.contract ? [r.contract] : [])))];
  return {
    address: rows.map((r) => r.address),
    contracts,
    contract: rows.map((r) => (r.contract ? contracts.indexOf(r.contract) : -1)),
    watchUntilMs: rows.map((r) => r.untilMs ?? UNTIL),
    derivationIndex: rows.map((r) => r.index ?? 7),
  };
}

describe("compact watch store", () => {
  it("gives back what was stored, field for field, under the normalised key", () => {
    const s = new WatchStore();
    const b = batch(
      { address: "0xAbC", contract: "0xtoken" },
      { address: "0xdef", untilMs: Number.NaN, index: 2 ** 31 + 5 },
      { address: "0x123", contract: "0xtoken" },
    );
    s.add(b, lower);
    expect(s.size).toBe(3);
    expect(s.get("0xabc")).toEqual({ address: "0xAbC", contract: "0xtoken", watchUntil: new Date(UNTIL), derivationIndex: 7 });
    expect(s.get("0xdef")).toEqual({ address: "0xdef", contract: null, watchUntil: null, derivationIndex: 2 ** 31 + 5 });
    expect(s.get("0xAbC")).toBeUndefined(); // keys are the caller's normalised form
    expect(s.entries()).toEqual(entriesOf(b));
  });

  it("gives back the coordinator's spelling: checksummed, differing beyond case, and longer than a case mask holds", () => {
    const s = new WatchStore();
    const checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"; // EIP-55
    const long = `bc1q${"A".repeat(70)}`;
    const full = `bc1q${"A".repeat(60)}`; // upper case up to the mask's last bit
    s.add(batch({ address: checksummed }, { address: "0xABCDEF" }, { address: long }, { address: full }, { address: "0x00aa" }), lower);
    s.add(batch({ address: "0x00AA" }), (a) => a.replace("AA", "zz")); // not a case difference: kept as spelled
    expect(s.get(checksummed.toLowerCase())?.address).toBe(checksummed);
    expect(s.get("0xabcdef")?.address).toBe("0xABCDEF");
    expect(s.get(long.toLowerCase())?.address).toBe(long);
    expect(s.get(full.toLowerCase())?.address).toBe(full);
    expect(s.get("0x00aa")?.address).toBe("0x00aa");
    expect(s.get("0x00zz")?.address).toBe("0x00AA");
    // A slot reused by another address forgets the last one's case.
    s.delete("0xabcdef");
    s.add(batch({ address: "0xabcdee" }), lower);
    expect(s.get("0xabcdee")?.address).toBe("0xabcdee");
  });

  it("keeps every field when its columns grow past their first capacity", () => {
    const s = new WatchStore();
    const n = 5_000;
    const rows = Array.from({ length: n }, (_, i) => ({
      address: `0xA${i.toString(16)}`,
      contract: i % 2 ? "0xt" : undefined,
      untilMs: i % 5 ? UNTIL + i : Number.NaN,
      index: 2 ** 32 - 1 - i,
    }));
    for (let i = 0; i < n; i += 700) s.add(batch(...rows.slice(i, i + 700)), lower);
    expect(s.size).toBe(n);
    expect(s.entries()).toEqual(entriesOf(batch(...rows)));
  });

  it("maps each batch's contract table onto its own: the same contract at another index is one contract", () => {
    const s = new WatchStore();
    s.add(batch({ address: "0x1", contract: "0xusdt" }, { address: "0x2", contract: "0xusdc" }), lower);
    s.add(batch({ address: "0x3", contract: "0xusdc" }, { address: "0x4" }, { address: "0x5", contract: "0xusdt" }), lower);
    expect(["0x1", "0x2", "0x3", "0x4", "0x5"].map((a) => s.get(a)?.contract)).toEqual(["0xusdt", "0xusdc", "0xusdc", null, "0xusdt"]);
  });

  it("replaces an entry in place, and reuses a deleted entry's slot without leaking its fields", () => {
    const s = new WatchStore();
    s.add(batch({ address: "0x1", contract: "0xt" }), lower);
    s.add(batch({ address: "0x1", index: 9 }), lower);
    expect(s.size).toBe(1);
    expect(s.get("0x1")).toMatchObject({ derivationIndex: 9, contract: null });
    s.add(batch({ address: "0X2" }), lower);
    s.delete("0x1");
    s.delete("0x1");
    expect(s.size).toBe(1);
    expect(s.get("0x1")).toBeUndefined();
    s.add(batch({ address: "0x3" }), lower);
    expect(s.get("0x3")).toEqual(entriesOf(batch({ address: "0x3" }))[0]);
    expect(s.get("0x2")).toEqual(entriesOf(batch({ address: "0X2" }))[0]);
    expect(s.entries().map((e) => e.address).sort()).toEqual(["0X2", "0x3"]);
  });
});
