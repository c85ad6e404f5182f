import { createLogger, createRegistry, delay } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTrades, metricValue, registerAgent, startTestCoordinator, takeLease, uniqueNetwork, type TestCoordinator } from "../_test/coordinator.js";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { createWatchSet, type WatchChange } from "./index.js";

const logger = createLogger({ name: "watch-test", level: "silent" });
// A lease that outlives each test (nothing renews it here), also across a coordinator restart.
let tc: TestCoordinator;
beforeAll(async () => {
  tc = await startTestCoordinator({ LEASE_TTL_MS: "60000" });
});
afterAll(async () => tc?.close());

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const network = uniqueNetwork();
  const identity = await registerAgent(tc.address, network, "agent-w");
  const client = createCoordinatorClient({ address: tc.address, logger });
  cleanups.push(() => client.close());
  const metrics = createAgentMetrics(createRegistry("watch-test"), network);
  const watch = createWatchSet({ logger }, { client, metrics, normalize: (a) => a.toLowerCase(), network });
  const ac = new AbortController();
  const lost: string[] = [];
  const run = () => {
    const p = watch.run(identity, ac.signal, (r) => lost.push(r));
    cleanups.push(async () => {
      ac.abort();
      await p;
    });
    return p;
  };
  return { network, identity, metrics, watch, run, lost };
}

describe("watch set (real coordinator)", () => {
  it("loads a snapshot sent in several messages", async () => {
    const { network, watch, run } = await setup();
    // The coordinator sends a snapshot in messages of 5000 addresses: 5001 take two.
    await createTrades(
      tc.sql,
      network,
      Array.from({ length: 5_001 }, (_, i) => ({ address: `0xAbC${i}`, contract: i === 3 ? "0xToken" : "" })),
    );
    const changes: WatchChange[] = [];
    watch.onChange((c) => changes.push(c));
    void run();
    await watch.waitSynced(AbortSignal.timeout(10_000));
    expect(watch.synced).toBe(true);
    expect(watch.size).toBe(5_001);
    expect(watch.get("0xabc3")).toMatchObject({ address: "0xAbC3", contract: "0xToken", derivationIndex: 3 });
    expect(watch.get("0xABC1")).toMatchObject({ address: "0xAbC1", contract: null, derivationIndex: 1 });
    expect(watch.get("0xabc5000")).toMatchObject({ address: "0xAbC5000", derivationIndex: 5_000 });
    // Swapped in whole, once complete: one change, a resync.
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ resync: true });
    expect(changes[0]!.upserted).toHaveLength(5_001);
  });

  it("applies live upserts (a new trade) and removes (monitoring over)", async () => {
    const { network, watch, run } = await setup();
    // 0xAbC2's trade stops being monitored a moment after the agent has synced.
    await createTrades(tc.sql, network, [
      { address: "0xAbC1", assignedSecondsAgo: 3_600 },
      { address: "0xAbC2", assignedSecondsAgo: 3_600, monitorSeconds: 2.5 },
    ]);
    const changes: WatchChange[] = [];
    watch.onChange((c) => changes.push(c));
    void run();
    await eventually(() => watch.synced);
    expect(watch.size).toBe(2);
    await createTrades(tc.sql, network, [{ address: "0xDEF" }], { indexBase: 9 });
    await eventually(() => watch.get("0xdef")?.derivationIndex === 9, { timeout: 2_000 });
    expect(watch.get("0xabc2")).toBeDefined();
    await eventually(() => watch.size === 2 && !watch.get("0xabc2"), { timeout: 5_000 });
    expect(watch.get("0xabc1")).toBeDefined();
    expect(changes.slice(1).map((c) => [c.upserted.length, c.removed.length, c.resync])).toEqual([
      [1, 0, false],
      [0, 1, false],
    ]);
  });

  it("reconnects after the stream drops and re-snapshots, picking up what changed meanwhile", async () => {
    const { network, metrics, watch, run } = await setup();
    await createTrades(tc.sql, network, [{ address: "0x01" }]);
    void run();
    await eventually(() => watch.synced);
    const gen = watch.generation;
    // The coordinator goes away: the stream ends and reconnecting fails until it is back.
    await tc.stop();
    try {
      await eventually(() => !watch.synced);
      await eventually(async () => ((await metricValue(metrics.registry, "ponte_agent_coordinator_retries_total", { method: "WatchAddresses" })) ?? 0) >= 1, {
        timeout: 5_000,
      });
      // Changed while the agent was disconnected: only a fresh snapshot carries it.
      await createTrades(tc.sql, network, [{ address: "0x02" }], { indexBase: 2 });
      await tc.sql`UPDATE instant_trades SET monitoring_until = now() - interval '1 second' WHERE network = ${network} AND deposit_address = '0x01'`;
    } finally {
      await tc.start();
    }
    await eventually(() => watch.synced && watch.get("0x02") !== undefined, { timeout: 10_000 });
    expect(watch.get("0x01")).toBeUndefined();
    expect(watch.size).toBe(1);
    expect(watch.generation).toBeGreaterThan(gen + 1);
  });

  // A failing streaming handler must end the call with its status (it once hung: see handlers.ts).
  it("stops and reports LEASE_LOST when the coordinator fences the stream off", async () => {
    const { identity, watch, run, lost } = await setup();
    await takeLease(tc.address, identity, "agent-x");
    const ended = await Promise.race([run().then(() => true), delay(1_500).then(() => false)]);
    expect(ended, "the watch stream ended").toBe(true);
    expect(lost).toEqual(["watch stream: lease lost"]);
    expect(watch.synced).toBe(false);
  });
});
