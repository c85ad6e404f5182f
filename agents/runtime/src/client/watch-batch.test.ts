import { agentv1 } from "@ponte/proto";
import { describe, expect, it } from "vitest";
import { fromWatchBatch } from "./watch-batch.js";

const good: agentv1.WatchBatch = {
  address: ["0xa", "0xb"],
  contracts: ["0xusdt"],
  contract: [0, -1],
  watchUntilMs: [1_900_000_000_000, 1_900_000_000_001],
  derivationIndex: [1, 2],
};

describe("watch batch from the stream", () => {
  it("survives the wire unchanged, and a message without one is an empty batch", () => {
    const wire = agentv1.WatchUpdate.decode(agentv1.WatchUpdate.encode({ add: good, remove: ["0xc"], snapshotComplete: true }).finish());
    expect(fromWatchBatch(wire.add)).toEqual(good);
    expect(fromWatchBatch(undefined)).toEqual({ address: [], contracts: [], contract: [], watchUntilMs: [], derivationIndex: [] });
  });

  it("refuses columns of different lengths and a contract index outside the table", () => {
    expect(() => fromWatchBatch({ ...good, derivationIndex: [1] })).toThrow(/differ in length/);
    expect(() => fromWatchBatch({ ...good, watchUntilMs: [] })).toThrow(/differ in length/);
    expect(() => fromWatchBatch({ ...good, contract: [1, -1] })).toThrow(/out of range/);
    expect(() => fromWatchBatch({ ...good, contract: [0, -2] })).toThrow(/out of range/);
  });
});
