import { describe, expect, it } from "vitest";
import type { WatchEntry } from "../types.js";
import { WatchStore } from "./store.js";

const entry = (address: string, over: Partial<WatchEntry> = {}): WatchEntry => ({
  address,
  tradeId: `trd_${address}`,
  contract: null,
  watchUntil: new Date("2030-01-02T03:04:05.678Z"),
  derivationIndex: 7,
  ...over,
});

describe("compact watch store", () => {
  it("gives back what was stored, field for field", () => {
    const s = new WatchStore();
    const a = entry("0xAbC", { contract: "0xtoken" });
    const b = entry("0xdef", { watchUntil: null, derivationIndex: 2 ** 31 + 5 });
    s.set("0xabc", a);
    s.set("0xdef", b);
    expect(s.size).toBe(2);
    expect(s.get("0xabc")).toEqual(a);
    expect(s.get("0xdef")).toEqual(b);
    expect(s.get("0xAbC")).toBeUndefined(); // keys are the caller's normalised form
    expect(s.entries()).toEqual([a, b]);
  });

  it("replaces an entry in place, and reuses a deleted entry's slot without leaking its fields", () => {
    const s = new WatchStore();
    s.set("0x1", entry("0x1", { contract: "0xt" }));
    s.set("0x1", entry("0x1", { tradeId: "trd_new" }));
    expect(s.size).toBe(1);
    expect(s.get("0x1")).toMatchObject({ tradeId: "trd_new", contract: null });
    s.set("0x2", entry("0X2"));
    s.delete("0x1");
    s.delete("0x1");
    expect(s.size).toBe(1);
    expect(s.get("0x1")).toBeUndefined();
    s.set("0x3", entry("0x3"));
    expect(s.get("0x3")).toEqual(entry("0x3"));
    expect(s.get("0x2")).toEqual(entry("0X2"));
    expect(s.entries().map((e) => e.address).sort()).toEqual(["0X2", "0x3"]);
  });
});
