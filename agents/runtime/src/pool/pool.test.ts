import { createLogger, createRegistry } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { fakeDerive } from "../_test/common.js";
import { createTrades, metricValue, poolOf, registerAgent, startTestCoordinator, stockPool, uniqueNetwork, type TestCoordinator } from "../_test/coordinator.js";
import { createPoolKeeper } from "./index.js";

const logger = createLogger({ name: "pool-test", level: "silent" });
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

/** The pool's target is the coordinator's setting: restart it with this test's. */
async function setup(target: number) {
  await tc.restart({ ADDRESS_POOL_TARGET: String(target), ADDRESS_POOL_LOW_WATER: String(Math.floor(target / 4)) });
  const network = uniqueNetwork();
  const client = createCoordinatorClient({ address: tc.address, logger });
  cleanups.push(() => client.close());
  const metrics = createAgentMetrics(createRegistry("pool-test"), network);
  const derived: number[] = [];
  const pool = createPoolKeeper({ logger }, {
    client,
    metrics,
    network,
    intervalMs: 60_000,
    debounceMs: 10,
    derive: (i) => {
      derived.push(i);
      return fakeDerive(i);
    },
  });
  const run = (identity: Parameters<typeof pool.run>[0]) => {
    const ac = new AbortController();
    const p = pool.run(identity, ac.signal, () => {});
    cleanups.push(async () => {
      ac.abort();
      await p;
    });
  };
  const available = async () => (await poolOf(tc.sql, network)).filter((a) => a.status === "AVAILABLE").length;
  return { network, pool, derived, metrics, run, available };
}

describe("address pool keeper (real coordinator)", () => {
  it("fills an empty pool to its target from index 0, in chunks of at most 500", async () => {
    const { network, pool, derived } = await setup(1_200);
    const identity = await registerAgent(tc.address, network, "agent-p");
    const r = await pool.refill(identity);
    expect(r).toEqual({ available: 1_200, added: 1_200 });
    expect(await tc.grpcCalls("addDepositAddresses")).toBe(3);
    expect(derived).toEqual(Array.from({ length: 1_200 }, (_, i) => i));
    const stored = await poolOf(tc.sql, network);
    expect(stored.map((a) => Number(a.derivation_index))).toEqual(Array.from({ length: 1_200 }, (_, i) => i));
    expect(stored[1_199]).toMatchObject({ address: "addr-1199", derivation_index: 1_199n, derivation_path: "m/0/1199", status: "AVAILABLE" });
    // Full already: a second check adds nothing.
    expect(await pool.refill(identity)).toEqual({ available: 1_200, added: 0 });
    expect(await tc.grpcCalls("addDepositAddresses")).toBe(3);
  });

  it("tops the pool up after allocations, continuing after the highest stored index", async () => {
    const { network, pool, run, available } = await setup(10);
    run(await registerAgent(tc.address, network, "agent-p"));
    await eventually(async () => (await available()) === 10);
    // Two trades take the two lowest addresses.
    const trades = await createTrades(tc.sql, network, [{}, {}]);
    expect(trades.map((t) => t.address)).toEqual(["addr-0", "addr-1"]);
    pool.poke();
    await eventually(async () => (await poolOf(tc.sql, network)).length === 12);
    const stored = await poolOf(tc.sql, network);
    expect(stored.map((a) => Number(a.derivation_index))).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(await available()).toBe(10);
  });

  it("continues from next_index, one past the highest index ever stored", async () => {
    const { network, pool, derived } = await setup(4);
    // Indices 0..2 and 7 stored by an earlier agent, 0..2 taken by trades: next_index is 8.
    await stockPool(tc.address, network, [0, 1, 2, 7].map((i) => fakeDerive(i)));
    await createTrades(tc.sql, network, [{}, {}, {}]);
    const identity = await registerAgent(tc.address, network, "agent-p");
    expect(await pool.refill(identity)).toEqual({ available: 4, added: 3 });
    expect(derived).toEqual([8, 9, 10]);
    expect((await poolOf(tc.sql, network)).map((a) => [Number(a.derivation_index), a.status])).toEqual([
      [0, "ASSIGNED"],
      [1, "ASSIGNED"],
      [2, "ASSIGNED"],
      [7, "AVAILABLE"],
      [8, "AVAILABLE"],
      [9, "AVAILABLE"],
      [10, "AVAILABLE"],
    ]);
  });

  it("retries a failed refill with backoff until the coordinator is back", async () => {
    const { network, metrics, run, available } = await setup(5);
    const identity = await registerAgent(tc.address, network, "agent-p");
    await tc.stop();
    try {
      run(identity);
      await eventually(
        async () => ((await metricValue(metrics.registry, "ponte_agent_coordinator_retries_total", { method: "AddDepositAddresses" })) ?? 0) >= 2,
        { timeout: 5_000 },
      );
      expect(await available()).toBe(0);
    } finally {
      await tc.start();
    }
    await eventually(async () => (await available()) === 5, { timeout: 8_000 });
  });
});
