import { createLogger, createRegistry } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runAgent, type FollowerContext } from "../agent/index.js";
import { fakeDerive, testCommon, untilAborted } from "../_test/common.js";
import { leaseOf, metricValue, startTestCoordinator, takeLease, uniqueNetwork, type TestCoordinator } from "../_test/coordinator.js";
import { createCoordinatorClient } from "../client/index.js";
import { createAgentMetrics } from "../metrics/index.js";
import { createLease } from "./index.js";

// A 1.5 s lease: renewed every 500 ms.
const TTL_MS = 1_500;
let tc: TestCoordinator;
beforeAll(async () => {
  tc = await startTestCoordinator({ LEASE_TTL_MS: String(TTL_MS), ADDRESS_POOL_TARGET: "3", ADDRESS_POOL_LOW_WATER: "1" });
});
afterAll(async () => tc?.close());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const hash = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;

/** An agent whose follower only records its terms. */
async function agent(network: string, id: string, terms: FollowerContext[]) {
  const h = await runAgent(testCommon({ coordinatorAddress: tc.address, agentId: id }), {
    network,
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

/** Resolves right after the holder's next renewal reached the coordinator. */
async function nextRenewal(network: string) {
  const before = (await leaseOf(tc.sql, network))!.renewed_at.getTime();
  await eventually(async () => (await leaseOf(tc.sql, network))!.renewed_at.getTime() > before, { interval: 10, timeout: 3_000 });
}

describe("lease (real coordinator)", () => {
  it("grants one agent, keeps the other on standby, and hands over on release", async () => {
    const network = uniqueNetwork();
    const termsA: FollowerContext[] = [];
    const termsB: FollowerContext[] = [];
    const a = await agent(network, "agent-a", termsA);
    await eventually(() => termsA.length === 1);
    const b = await agent(network, "agent-b", termsB);
    // Several renewal periods pass: A renews under its epoch, B never follows.
    const renewals = new Set<number>();
    await eventually(
      async () => {
        const l = await leaseOf(tc.sql, network);
        expect(l).toMatchObject({ holder: "agent-a", epoch: termsA[0]!.epoch, lapsed: false });
        renewals.add(l!.renewed_at.getTime());
        return renewals.size >= 4;
      },
      { timeout: 5_000, interval: 50 },
    );
    expect(a.leaseHeld).toBe(true);
    expect(b.leaseHeld).toBe(false);
    expect(termsB).toHaveLength(0);
    expect(await metricValue(b.agentMetrics.registry, "ponte_agent_lease_held")).toBe(0);

    // Without the release, A's lease would run until this.
    const aExpiry = (await leaseOf(tc.sql, network))!.expires_at.getTime();
    await a.stop();
    expect(termsA[0]!.signal.aborted).toBe(true);
    await eventually(() => termsB.length === 1, { timeout: 3_000 });
    expect(b.leaseHeld).toBe(true);
    expect(termsB[0]!.epoch).toBeGreaterThan(termsA[0]!.epoch);
    const l = (await leaseOf(tc.sql, network))!;
    expect(l).toMatchObject({ holder: "agent-b", epoch: termsB[0]!.epoch });
    // B took over on the release, before A's lease would have lapsed.
    expect(l.acquired_at.getTime()).toBeLessThan(aExpiry);
  });

  it("stops following at once on LEASE_LOST and stands by until granted again", async () => {
    const network = uniqueNetwork();
    const terms: FollowerContext[] = [];
    const a = await agent(network, "agent-a", terms);
    await eventually(() => terms.length === 1);
    const first = terms[0]!;
    // Right after a renewal (the next is 500 ms away), agent-x takes the lease behind A's back,
    // as when A's lease lapsed unnoticed: A's next call is fenced off by the new epoch.
    await nextRenewal(network);
    const x = await takeLease(tc.address, { network, agentId: "agent-a", leaseEpoch: first.epoch }, "agent-x");
    expect(x.leaseEpoch).toBe(first.epoch + 1n);
    const block = { height: 1n, hash: hash(1), parentHash: hash(0), time: 0n, deposits: [] };
    await expect(first.report([block], { height: 1n, hash: hash(1) }, 0n)).rejects.toMatchObject({ code: "LEASE_LOST" });
    expect(first.signal.aborted).toBe(true);
    expect(a.leaseHeld).toBe(false);
    expect(await metricValue(a.agentMetrics.registry, "ponte_agent_lease_held")).toBe(0);
    expect(await tc.sql`SELECT 1 FROM chain_blocks WHERE network = ${network}`).toHaveLength(0);
    // agent-x never renews: once its lease lapses, agent-a gets a new term with a new epoch.
    await eventually(() => terms.length === 2, { timeout: 5_000 });
    expect(terms[1]!.epoch).toBeGreaterThan(x.leaseEpoch);
    expect(await leaseOf(tc.sql, network)).toMatchObject({ holder: "agent-a", epoch: terms[1]!.epoch });
    expect(a.leaseHeld).toBe(true);
  });

  it("gives up the term when renewals fail for a whole TTL", async () => {
    const network = uniqueNetwork();
    const terms: FollowerContext[] = [];
    const a = await agent(network, "agent-a", terms);
    await eventually(() => terms.length === 1);
    // The coordinator goes away: every renewal fails until it is back.
    await tc.stop();
    try {
      await eventually(() => terms[0]!.signal.aborted, { timeout: TTL_MS + 2_000 });
      expect(a.leaseHeld).toBe(false);
      expect(await metricValue(a.agentMetrics.registry, "ponte_agent_coordinator_retries_total", { method: "Register" })).toBeGreaterThan(0);
    } finally {
      await tc.start();
    }
    await eventually(() => terms.length === 2, { timeout: 8_000 });
    expect(a.leaseHeld).toBe(true);
    expect(await leaseOf(tc.sql, network)).toMatchObject({ holder: "agent-a", epoch: terms[1]!.epoch });
  });

  it("does not wait forever for a term whose work ignores its signal", async () => {
    const network = uniqueNetwork();
    const logger = createLogger({ name: "lease-test", level: "silent" });
    const client = createCoordinatorClient({ address: tc.address, logger });
    cleanups.push(async () => client.close());
    const lease = createLease({ logger }, {
      client,
      network,
      agentId: "agent-stuck",
      family: "evm",
      chainId: "1",
      version: "test",
      metrics: createAgentMetrics(createRegistry("lease-test"), network),
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
    // Released all the same: the lease is free at once.
    expect(await leaseOf(tc.sql, network)).toMatchObject({ holder: "agent-stuck", lapsed: true });
  });
});
