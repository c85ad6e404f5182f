import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regtestConfig, startTestAgent, timesReported, type TestAgent } from "../_test/agent.js";
import { createTrade, cursorHeight, deposits, startTestCoordinator, tradeStatus, type TestCoordinator, type Trade } from "../_test/coordinator.js";
import { closeLitecoind, RPC_PASSWORD, RPC_USER, startLitecoind, type Litecoind } from "../_test/litecoind.js";

// A node with a work queue of 1 and one RPC thread: most concurrent requests are refused with
// "Work queue depth exceeded" (HTTP 503) while a load generator keeps it busy.
let node: Litecoind;
let tc: TestCoordinator;
let agent: TestAgent;

beforeAll(async () => {
  [node, tc] = await Promise.all([
    startLitecoind({ workQueue: 1, rpcThreads: 1 }),
    startTestCoordinator({ ADDRESS_POOL_TARGET: "8", ADDRESS_POOL_LOW_WATER: "2" }),
  ]);
}, 60_000);
afterAll(async () => {
  await agent?.stop();
  await tc?.close();
  await closeLitecoind(node);
});

describe("UTXO follower faults on litecoind regtest", () => {
  it("the RPC work queue full: backs off and skips nothing", async () => {
    // Deposits made before the agent starts: it catches up through a full work queue.
    const auth = `Basic ${Buffer.from(`${RPC_USER}:${RPC_PASSWORD}`).toString("base64")}`;
    // From the current height: the 101 set-up blocks need not be read through the tiny queue.
    const from = BigInt(await node.height());
    agent = await startTestAgent(tc.address, regtestConfig(node, { maxInFlight: 6, rpcBatchSize: 2, batchSize: 4, startHeight: from }));
    await eventually(async () => (await tc.sql`SELECT 1 FROM deposit_addresses WHERE status = 'AVAILABLE'`).length >= 6, { timeout: 30_000 });
    const trades: Trade[] = [];
    for (let i = 0; i < 4; i++) trades.push(await createTrade(tc.sql, { amount: 1_000_000n }));
    await eventually(() => trades.every((t) => agent.handle.watch.get(t.address)), { timeout: 10_000 });

    const refusals = () =>
      agent.logs.filter((l) => l.reason === "work_queue_full" || (l.err as { details?: { reason?: string } } | undefined)?.details?.reason === "work_queue_full").length;
    let loading = true;
    const load = Promise.all(
      Array.from({ length: 1 }, async () => {
        while (loading) {
          await fetch(node.url, { method: "POST", headers: { authorization: auth }, body: JSON.stringify({ jsonrpc: "1.0", id: 0, method: "getblockchaininfo", params: [] }) }).then(
            (r) => r.text(),
            () => "",
          );
        }
      }),
    );
    try {
      for (const [i, t] of trades.entries()) {
        await node.pay({ [t.address]: 1_000_000n + BigInt(i) });
        await node.mine(2);
      }
      await node.mine(6);
      // The agent meets the full queue while catching up (refused, logged, backing off)...
      await eventually(() => expect(refusals()).toBeGreaterThan(0), { timeout: 60_000, interval: 200 });
    } finally {
      loading = false;
      await load;
    }
    // ...and once the node has room again it has skipped nothing: every block, every deposit once.
    const tip = BigInt(await node.height());
    await eventually(async () => expect((await cursorHeight(tc.sql)) ?? 0n).toBeGreaterThanOrEqual(tip), { timeout: 60_000, interval: 200 });
    const stored = [...(await deposits(tc.sql)).values()];
    for (const [i, t] of trades.entries()) {
      const mine = stored.filter((d) => d.trade_id === t.tradeId);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ status: "CONFIRMED", amount: (1_000_000n + BigInt(i)).toString() });
      expect(timesReported(agent, mine[0]!.tx_ref)).toBe(1);
      await eventually(async () => expect(await tradeStatus(tc.sql, t.tradeId)).toBe("PAYMENT_CONFIRMED"));
    }
    // It was refused, said so, and counted it.
    const metrics = await agent.common.metrics.metrics();
    expect(metrics).toMatch(/ponte_agent_rpc_errors_total\{[^}]*\} [1-9]/);
  }, 150_000);
});
