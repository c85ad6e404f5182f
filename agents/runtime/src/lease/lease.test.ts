import { eventually } from "@ponte/common/testing";
import { afterEach, describe, expect, it } from "vitest";
import { runAgent, type AgentHandle, type FollowerContext } from "../agent/index.js";
import { fakeDerive, testCommon, untilAborted } from "../_test/common.js";
import { startFakeCoordinator, type FakeCoordinator } from "../testing/index.js";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { createLease } from "./index.js";
import { createLogger, createRegistry } from "@ponte/common";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(ttl = 600) {
  const fake = await startFakeCoordinator({ leaseTtlMs: ttl, target: 3 });
  cleanups.push(() => fake.stop());
  return fake;
}

/** An agent whose follower only records its terms. */
async function agent(fake: FakeCoordinator, id: string, terms: FollowerContext[]) {
  const h = await runAgent(testCommon({ coordinatorAddress: fake.address, agentId: id }), {
    network: "testnet",
    family: "evm",
    chainId: "31337",
    deriveAddress: fakeDerive,
    createFollower: (ctx) => ({
      run: () => {
        terms.push(ctx);
        return untilAborted(ctx.signal);
      },
    }),
  });
  cleanups.push(() => h.stop());
  return h;
}

describe("lease", () => {
  it("grants one agent, keeps the other on standby, and hands over on release", async () => {
    const fake = await setup();
    const termsA: FollowerContext[] = [];
    const termsB: FollowerContext[] = [];
    const a = await agent(fake, "agent-a", termsA);
    await eventually(() => termsA.length === 1);
    const b = await agent(fake, "agent-b", termsB);
    // Several renewal periods pass: A keeps its epoch, B never follows.
    await new Promise((r) => setTimeout(r, 700));
    expect(a.leaseHeld).toBe(true);
    expect(b.leaseHeld).toBe(false);
    expect(termsB).toHaveLength(0);
    expect(termsA[0]!.epoch).toBe(fake.lease.epoch);
    expect(fake.calls.filter((c) => c.method === "Register" && c.agentId === "agent-a" && c.epoch === termsA[0]!.epoch).length).toBeGreaterThan(2);

    await a.stop();
    expect(termsA[0]!.signal.aborted).toBe(true);
    await eventually(() => termsB.length === 1, { timeout: 2_000 });
    expect(b.leaseHeld).toBe(true);
    expect(termsB[0]!.epoch).toBeGreaterThan(termsA[0]!.epoch);
  });

  it("stops following at once on LEASE_LOST and stands by until granted again", async () => {
    const fake = await setup(1_500);
    const terms: FollowerContext[] = [];
    const a = await agent(fake, "agent-a", terms);
    await eventually(() => terms.length === 1);
    const first = terms[0]!;
    // Another agent took the lease behind this one's back: the next call it makes is fenced off.
    fake.lease.holder = "agent-x";
    fake.lease.epoch += 1n;
    fake.lease.expiresAt = Date.now() + 1_000;
    await expect(first.report([], { height: 1n, hash: "0x01" }, 0n)).rejects.toMatchObject({ code: "LEASE_LOST" });
    expect(first.signal.aborted).toBe(true);
    expect(a.leaseHeld).toBe(false);
    const metrics = await a.agentMetrics.registry.getSingleMetricAsString("ponte_agent_lease_held");
    expect(metrics).toContain('ponte_agent_lease_held{network="testnet",component="agent-test"} 0');
    // agent-x never renews: once its lease lapses, agent-a gets a new term with a new epoch.
    await eventually(() => terms.length === 2, { timeout: 5_000 });
    expect(terms[1]!.epoch).toBe(fake.lease.epoch);
    expect(a.leaseHeld).toBe(true);
  });

  it("gives up the term when renewals fail for a whole TTL", async () => {
    const fake = await setup(600);
    const terms: FollowerContext[] = [];
    const a = await agent(fake, "agent-a", terms);
    await eventually(() => terms.length === 1);
    fake.failNext("Register", 1_000);
    await eventually(() => terms[0]!.signal.aborted, { timeout: 2_000 });
    expect(a.leaseHeld).toBe(false);
    fake.failNext("Register", 0);
    await eventually(() => terms.length === 2, { timeout: 3_000 });
  });

  it("does not wait forever for a term whose work ignores its signal", async () => {
    const fake = await setup(600);
    const logger = createLogger({ name: "lease-test", level: "silent" });
    const client = createCoordinatorClient({ address: fake.address, logger });
    cleanups.push(async () => client.close());
    const lease = createLease({ logger }, {
      client,
      network: "testnet",
      agentId: "agent-stuck",
      family: "evm",
      chainId: "1",
      version: "test",
      metrics: createAgentMetrics(createRegistry("lease-test"), "testnet"),
      termStopTimeoutMs: 200,
    });
    let started = false;
    lease.start(() => {
      started = true;
      return new Promise<void>(() => {});
    });
    await eventually(() => started);
    const t0 = Date.now();
    await lease.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(fake.lease.holder).toBeUndefined(); // released all the same
  });
});
