import { describe, expect, it } from "vitest";
import type { WatchRow } from "../types.js";
import { toEntry, WatchStore } from "./store.js";

const row = (address: string, over: Partial<WatchRow> = {}): WatchRow => ({
  address,
  contract: null,
  watchUntilMs: Date.parse("2030-01-02T03:04:05.678Z"),
  derivationIndex: 7,
  ...over,
});

describe("compact watch store", () => {
  it("gives back what was stored, field for field", () => {
    const s = new WatchStore();
    const a = row("0xAbC", { contract: "0xtoken" });
    const b = row("0xdef", { watchUntilMs: Number.NaN, derivationIndex: 2 ** 31 + 5 });
    s.set("0xabc", a);
    s.set("0xdef", b);
    expect(s.size).toBe(2);
    expect(s.get("0xabc")).toEqual({ address: "0xAbC", contract: "0xtoken", watchUntil: new Date("2030-01-02T03:04:05.678Z"), derivationIndex: 7 });
    expect(s.get("0xdef")).toEqual({ address: "0xdef", contract: null, watchUntil: null, derivationIndex: 2 ** 31 + 5 });
    expect(s.get("0xAbC")).toBeUndefined(); // keys are the caller's normalised form
    expect(s.entries()).toEqual([toEntry(a), toEntry(b)]);
  });

  it("replaces an entry in place, and reuses a deleted entry's slot without leaking its fields", () => {
    const s = new WatchStore();
    s.set("0x1", row("0x1", { contract: "0xt" }));
    s.set("0x1", row("0x1", { derivationIndex: 9 }));
    expect(s.size).toBe(1);
    expect(s.get("0x1")).toMatchObject({ derivationIndex: 9, contract: null });
    s.set("0x2", row("0X2"));
    s.delete("0x1");
    s.delete("0x1");
    expect(s.size).toBe(1);
    expect(s.get("0x1")).toBeUndefined();
    s.set("0x3", row("0x3"));
    expect(s.get("0x3")).toEqual(toEntry(row("0x3")));
    expect(s.get("0x2")).toEqual(toEntry(row("0X2")));
    expect(s.entries().map((e) => e.address).sort()).toEqual(["0X2", "0x3"]);
  });
});
