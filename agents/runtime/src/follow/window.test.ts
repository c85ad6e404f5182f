import type { ProcessedBlock } from "../types.js";
import { describe, expect, it } from "vitest";
import { BlockWindow } from "./window.js";

const h = (n: number, fork = "a") => `0x${fork}${n.toString(16).padStart(63, "0")}`;
const block = (n: number, refs: string[] = [], fork = "a", parentFork = fork): ProcessedBlock => ({
  height: BigInt(n),
  hash: h(n, fork),
  parentHash: h(n - 1, parentFork),
  time: 0n,
  deposits: refs.map((r) => ({ txRef: r, txHash: r.split(":")[0]!, address: "0x1", contract: null, amount: 1n, from: null })),
});

describe("block window", () => {
  it("links blocks by parent hash and lists the deposits above an ancestor", () => {
    const w = new BlockWindow();
    w.reset({ height: 10n, hash: h(10) });
    w.add([block(11, ["0x11:native"]), block(12), block(13, ["0x13:0", "0x13:4"])]);
    expect(w.txRefsAbove(11n)).toEqual(["0x13:0", "0x13:4"]);
    expect(w.txRefsAbove(10n)).toEqual(["0x11:native", "0x13:0", "0x13:4"]);
    expect(() => w.add([block(14, [], "b", "b")])).toThrow(/does not extend/);
    expect(() => w.add([block(15)])).toThrow(/does not extend/);
  });

  it("rewinds to an ancestor inside the window, or restarts from one below it", () => {
    const w = new BlockWindow();
    w.reset({ height: 10n, hash: h(10) });
    w.add([block(11, ["0x11:native"]), block(12, ["0x12:1"])]);
    w.rewindTo({ height: 11n, hash: h(11) });
    expect(w.highest).toBe(11n);
    expect(w.txRefsAbove(10n)).toEqual(["0x11:native"]);
    w.add([block(12, ["0x12b:1"], "b", "a")]);
    expect(w.txRefsAbove(11n)).toEqual(["0x12b:1"]);
    w.rewindTo({ height: 5n, hash: h(5, "c") });
    expect([w.lowest, w.highest]).toEqual([5n, 5n]);
    expect(w.get(5n)?.hash).toBe(h(5, "c"));
  });

  it("prunes below the finalized height but keeps the anchor and the tip", () => {
    const w = new BlockWindow();
    w.reset(null);
    w.add([block(1), block(2), block(3), block(4)]);
    w.prune(3n);
    expect([w.lowest, w.highest]).toEqual([3n, 4n]);
    expect(w.get(2n)).toBeUndefined();
    w.prune(100n);
    expect([w.lowest, w.highest]).toEqual([4n, 4n]);
  });
});
