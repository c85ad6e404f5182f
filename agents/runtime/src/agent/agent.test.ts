import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fakeDerive, testCommon, untilAborted } from "../_test/common.js";
import { createTrades, cursorOf, leaseOf, poolOf, startTestCoordinator, stockPool, uniqueNetwork, type TestCoordinator } from "../_test/coordinator.js";
import { runAgent, type FollowerContext } from "./index.js";

let tc: TestCoordinator;
beforeAll(async () => {
  tc = await startTestCoordinator({ LEASE_TTL_MS: "900", ADDRESS_POOL_TARGET: "3", ADDRESS_POOL_LOW_WATER: "1" });
});
afterAll(async () => tc?.close());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const hash = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;

describe("runAgent (real coordinator)", () => {
  it("runs a follower per term with the cursor, serves metrics, and restarts a failed follower from the cursor", async () => {
    const network = uniqueNetwork();
    // A trade taken before this agent started, on an address an earlier agent stored (index 0).
    await stockPool(tc.address, network, [{ index: 0, address: "0xAA", path: "m/0/0" }]);
    await createTrades(tc.sql, network, [{}]);
    const starts: FollowerContext[] = [];
    let crash = true;
    const common = testCommon({ coordinatorAddress: tc.address, agentId: "agent-m" });
    const agent = await runAgent(common, {
      network,
      family: "utxo",
      chainId: "regtest",
      deriveAddress: fakeDerive,
      normalizeAddress: (a) => a.toLowerCase(),
      createFollower: (ctx) => ({
        async run() {
          starts.push(ctx);
          expect(ctx.watch.get("0xaa")).toMatchObject({ address: "0xAA", derivationIndex: 0 });
          const next = (ctx.cursor.block?.height ?? 0n) + 1n;
          await ctx.report([{ height: next, hash: hash(Number(next)), parentHash: hash(Number(next) - 1), time: 0n, deposits: [] }], { height: next, hash: hash(Number(next)) }, 0n);
          if (crash) {
            crash = false;
            throw new Error("boom");
          }
          await untilAborted(ctx.signal);
        },
      }),
    });
    cleanups.push(() => agent.stop());
    await eventually(() => starts.length === 2, { timeout: 5_000 });
    // The second follower started from the cursor the first one's report moved.
    expect(starts[0]!.cursor.block).toBeNull();
    expect(starts[1]!.cursor.block).toEqual({ height: 1n, hash: hash(1) });
    await eventually(async () => (await cursorOf(tc.sql, network))?.height === 2n);
    expect(await cursorOf(tc.sql, network)).toMatchObject({ height: 2n, hash: hash(2) });
    // The pool is topped up to its target, continuing after the stored index 0.
    await eventually(async () => (await poolOf(tc.sql, network)).filter((a) => a.status === "AVAILABLE").length === 3);
    expect((await poolOf(tc.sql, network)).map((a) => [a.derivation_index, a.address, a.status])).toEqual([
      [0n, "0xAA", "ASSIGNED"],
      [1n, "addr-1", "AVAILABLE"],
      [2n, "addr-2", "AVAILABLE"],
      [3n, "addr-3", "AVAILABLE"],
    ]);

    const base = `http://127.0.0.1:${agent.metricsPort}`;
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/ponte_agent_lease_held\{network="testnet-[\d-]+",component="agent-test"\} 1/);
    expect(text).toMatch(/ponte_agent_watched_addresses\{network="testnet-[\d-]+",component="agent-test"\} 1/);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    await agent.stop();
    expect(starts[1]!.signal.aborted).toBe(true);
    // Released once, at shutdown: the lease is free at once instead of after its TTL.
    const releases = tc.logs.filter((l) => l.msg === "Agent released the lease" && l.network === network && l.agent_id === "agent-m");
    expect(releases).toHaveLength(1);
    expect(await leaseOf(tc.sql, network)).toMatchObject({ holder: "agent-m", epoch: starts[1]!.epoch, lapsed: true });
  });
});
