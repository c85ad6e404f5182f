import { createLogger, createRegistry } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { startFakeCoordinator } from "../testing/index.js";
import { fakeDerive } from "../_test/common.js";
import { createPoolKeeper } from "./index.js";

const logger = createLogger({ name: "pool-test", level: "silent" });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const identity = { network: "testnet", agentId: "agent-p", leaseEpoch: 3n };

async function setup(target: number) {
  const fake = await startFakeCoordinator({ target, lowWater: Math.floor(target / 4) });
  cleanups.push(() => fake.stop());
  fake.lease = { holder: "agent-p", epoch: 3n, ttlMs: 60_000, expiresAt: Date.now() + 60_000 };
  const client = createCoordinatorClient({ address: fake.address, logger });
  cleanups.push(() => client.close());
  const metrics = createAgentMetrics(createRegistry("pool-test"), "testnet");
  const derived: number[] = [];
  const pool = createPoolKeeper({ logger }, {
    client,
    metrics,
    network: "testnet",
    intervalMs: 60_000,
    debounceMs: 10,
    derive: (i) => {
      derived.push(i);
      return fakeDerive(i);
    },
  });
  return { fake, pool, derived };
}

describe("address pool keeper", () => {
  it("fills an empty pool to its target from index 0, in chunks of at most 500", async () => {
    const { fake, pool, derived } = await setup(1_200);
    const addCalls = () => fake.calls.filter((c) => c.method === "AddDepositAddresses").length;
    const r = await pool.refill(identity);
    expect(r).toEqual({ available: 1_200, added: 1_200 });
    expect(addCalls()).toBe(3);
    expect(derived).toEqual(Array.from({ length: 1_200 }, (_, i) => i));
    expect(fake.pool[1_199]).toMatchObject({ address: "addr-1199", derivationIndex: 1_199, derivationPath: "m/0/1199" });
    // Full already: a second check adds nothing.
    expect(await pool.refill(identity)).toEqual({ available: 1_200, added: 0 });
  });

  it("tops the pool up after allocations, continuing after the highest stored index", async () => {
    const { fake, pool } = await setup(10);
    const ac = new AbortController();
    const run = pool.run(identity, ac.signal, () => {});
    cleanups.push(async () => {
      ac.abort();
      await run;
    });
    await eventually(() => fake.pool.length === 10);
    fake.allocate("trd_1");
    fake.allocate("trd_2");
    pool.poke();
    await eventually(() => fake.pool.length === 12);
    expect(fake.pool.map((a) => a.derivationIndex)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it("continues from next_index, one past the highest index ever stored", async () => {
    const { fake, pool, derived } = await setup(4);
    // Indices 0..2 and 7 stored, all but one already allocated: next_index is 8.
    for (const i of [0, 1, 2, 7]) fake.pool.push({ address: fakeDerive(i).address, derivationIndex: i, derivationPath: `m/0/${i}`, script: "" });
    for (const a of fake.pool.slice(0, 3)) fake.allocated.add(a.address);
    expect(await pool.refill(identity)).toEqual({ available: 4, added: 3 });
    expect(derived).toEqual([8, 9, 10]);
  });

  it("retries a failed refill with backoff", async () => {
    const { fake, pool } = await setup(5);
    fake.failNext("AddDepositAddresses", 2);
    const ac = new AbortController();
    const run = pool.run(identity, ac.signal, () => {});
    cleanups.push(async () => {
      ac.abort();
      await run;
    });
    await eventually(() => fake.pool.length === 5, { timeout: 5_000 });
  });
});
