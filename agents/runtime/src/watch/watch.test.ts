import { createLogger, createRegistry } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { startFakeCoordinator } from "../testing/index.js";
import { createWatchSet, type WatchChange } from "./index.js";

const logger = createLogger({ name: "watch-test", level: "silent" });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const fake = await startFakeCoordinator();
  cleanups.push(() => fake.stop());
  fake.lease = { holder: "agent-w", epoch: 7n, ttlMs: 60_000, expiresAt: Date.now() + 60_000 };
  const client = createCoordinatorClient({ address: fake.address, logger });
  cleanups.push(() => client.close());
  const metrics = createAgentMetrics(createRegistry("watch-test"), "testnet");
  const watch = createWatchSet({ logger }, { client, metrics, normalize: (a) => a.toLowerCase(), network: "testnet" });
  const ac = new AbortController();
  const lost: string[] = [];
  const run = () => {
    const p = watch.run({ network: "testnet", agentId: "agent-w", leaseEpoch: 7n }, ac.signal, (r) => lost.push(r));
    cleanups.push(async () => {
      ac.abort();
      await p;
    });
    return p;
  };
  return { fake, watch, ac, run, lost };
}

describe("watch set", () => {
  it("loads a snapshot sent in several messages, then applies live upserts and removes", async () => {
    const { fake, watch, run } = await setup();
    fake.snapshotChunk = 2;
    fake.watch([1, 2, 3, 4, 5].map((i) => ({ address: `0xAbC${i}`, tradeId: `trd_${i}`, contract: i === 3 ? "0xToken" : "" })));
    const changes: WatchChange[] = [];
    watch.onChange((c) => changes.push(c));
    void run();
    await watch.waitSynced(new AbortController().signal);
    expect(watch.size).toBe(5);
    expect(watch.get("0xabc3")).toMatchObject({ tradeId: "trd_3", contract: "0xToken" });
    expect(watch.get("0xABC1")?.contract).toBeNull();
    expect(changes).toHaveLength(1);
    expect(changes[0]!.resync).toBe(true);

    fake.watch([{ address: "0xDEF", tradeId: "trd_9" }]);
    fake.unwatch(["0xAbC2"]);
    await eventually(() => watch.size === 5 && watch.get("0xdef")?.tradeId === "trd_9" && !watch.get("0xabc2"));
    expect(changes.slice(1).map((c) => [c.upserted.length, c.removed.length])).toEqual([
      [1, 0],
      [0, 1],
    ]);
  });

  it("reconnects after the stream drops and re-snapshots, picking up what changed meanwhile", async () => {
    const { fake, watch, run } = await setup();
    fake.watch([{ address: "0x01", tradeId: "trd_1" }]);
    void run();
    await eventually(() => watch.synced);
    const gen = watch.generation;
    fake.failNext("WatchAddresses", 2);
    fake.dropWatchStreams();
    await eventually(() => !watch.synced);
    // Changed while the agent was disconnected: only a fresh snapshot carries it.
    fake.watched.set("0x02", { address: "0x02", tradeId: "trd_2", contract: "", watchUntil: "", derivationIndex: 2 });
    fake.watched.delete("0x01");
    await eventually(() => watch.synced && watch.get("0x02") !== undefined, { timeout: 5_000 });
    expect(watch.get("0x01")).toBeUndefined();
    expect(watch.generation).toBeGreaterThan(gen + 1);
  });

  it("stops and reports LEASE_LOST when the coordinator fences the stream off", async () => {
    const { fake, watch, run, lost } = await setup();
    fake.lease.epoch = 8n;
    await run();
    expect(lost).toEqual(["watch stream: lease lost"]);
    expect(watch.synced).toBe(false);
  });
});
