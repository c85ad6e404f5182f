import { eventually } from "@ponte/common/testing";
import { afterEach, describe, expect, it } from "vitest";
import { fakeDerive, testCommon, untilAborted } from "../_test/common.js";
import { startFakeCoordinator } from "../testing/index.js";
import { runAgent, type FollowerContext } from "./index.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const hash = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;

describe("runAgent", () => {
  it("runs a follower per term with the cursor, serves metrics, and restarts a failed follower from the cursor", async () => {
    const fake = await startFakeCoordinator({ leaseTtlMs: 900, target: 3 });
    cleanups.push(() => fake.stop());
    fake.watch([{ address: "0xAA", tradeId: "trd_a" }]);
    const starts: FollowerContext[] = [];
    let crash = true;
    const common = testCommon({ coordinatorAddress: fake.address, agentId: "agent-m" });
    const agent = await runAgent(common, {
      network: "testnet",
      family: "utxo",
      chainId: "regtest",
      deriveAddress: fakeDerive,
      normalizeAddress: (a) => a.toLowerCase(),
      createFollower: (ctx) => ({
        async run() {
          starts.push(ctx);
          expect(ctx.watch.get("0xaa")?.tradeId).toBe("trd_a");
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
    await eventually(() => fake.cursor.block?.height === 2n);
    await eventually(() => fake.pool.length === 3);

    const base = `http://127.0.0.1:${agent.metricsPort}`;
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/ponte_agent_lease_held\{network="testnet",component="agent-test"\} 1/);
    expect(text).toMatch(/ponte_agent_watched_addresses\{network="testnet",component="agent-test"\} 1/);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    await agent.stop();
    expect(starts[1]!.signal.aborted).toBe(true);
    expect(fake.calls.filter((c) => c.method === "Release" && c.agentId === "agent-m")).toHaveLength(1);
    expect(fake.lease.holder).toBeUndefined();
  });
});
