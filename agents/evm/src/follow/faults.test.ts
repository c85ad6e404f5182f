import { eventually, freePort } from "@ponte/common/testing";
import { parseEther, type Contract } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anvilConfig, startTestAgent, timesReported, type TestAgent } from "../_test/agent.js";
import { deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { createTrade, cursorHeight, deposits, NETWORK, pool, reportedBatches, startTestCoordinator, type TestCoordinator } from "../_test/coordinator.js";
import { metricValue } from "../_test/metrics.js";
import { startRpcProxy } from "@ponte/common/testing";
import type { EvmConfig, TokenConfig } from "../config/index.js";

let anvil: Anvil;
let usdt: Contract;
let tokens: TokenConfig[];
let tc: TestCoordinator;
let snapshot: string;
const agents: TestAgent[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  anvil = await startAnvil();
  usdt = await deployToken(anvil.wallet(0), "USDT", 6);
  tokens = [{ symbol: "USDT", contract: await usdt.getAddress(), decimals: 6 }];
  await mined(usdt.getFunction("mint")(anvil.wallet(0).address, 10n ** 15n));
  snapshot = await anvil.rpc<string>("evm_snapshot");
  tc = await startTestCoordinator({ ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": tokens[0]!.contract.toLowerCase() }) });
}, 60_000);
afterAll(async () => {
  await tc?.close();
  await anvil?.stop();
});

// Each test starts from the same chain and an empty coordinator.
const setup = async (o: { ttlMs?: number } = {}) => {
  await anvil.rpc("evm_revert", [snapshot]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
  await tc.reset({ LEASE_TTL_MS: String(o.ttlMs ?? 900), ADDRESS_POOL_TARGET: "12", ADDRESS_POOL_LOW_WATER: "1" });
};
afterEach(async () => {
  while (agents.length) await agents.pop()!.stop();
  while (cleanups.length) await cleanups.pop()!();
});

const start = async (o: Partial<EvmConfig> = {}, id?: string) => {
  const a = await startTestAgent(tc.address, anvilConfig(anvil, tokens, o), { agentId: id });
  agents.push(a);
  return a;
};
const poolSize = async () => (await pool(tc.sql)).length;

/**
 * n deposits (native and token, alternating) spread over many blocks, several per block at
 * times; returns the tx_refs expected.
 */
async function depositBurst(addresses: string[], n: number, gap = 7): Promise<string[]> {
  const w = anvil.wallet(0);
  const refs: string[] = [];
  await anvil.rpc("evm_setAutomine", [false]);
  try {
    let nonce = await anvil.provider.getTransactionCount(w.address, "pending");
    const pending: { hash: string; token: boolean }[] = [];
    for (let i = 0; i < n; i++) {
      const to = addresses[i % addresses.length]!;
      if (i % 2 === 0) {
        const t = await w.sendTransaction({ to, value: parseEther("0.01") + BigInt(i), nonce: nonce++ });
        pending.push({ hash: t.hash.toLowerCase(), token: false });
      } else {
        const t = (await usdt.getFunction("transfer")(to, 1_000_000n + BigInt(i), { nonce: nonce++ })) as { hash: string };
        pending.push({ hash: t.hash.toLowerCase(), token: true });
      }
      if (i % 3 !== 1) await anvil.mine(1 + (i % gap));
    }
    await anvil.mine(1);
    for (const p of pending) {
      if (!p.token) refs.push(`${p.hash}:native`);
      else refs.push(`${p.hash}:${(await anvil.provider.getTransactionReceipt(p.hash))!.logs[0]!.index}`);
    }
  } finally {
    await anvil.rpc("evm_setAutomine", [true]);
  }
  return refs;
}

/** n trades on the next pool addresses (ETH sales; the agent reports any asset sent to them). */
const allocateMany = async (n: number) => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await createTrade(tc.sql, { symbol: "ETH", amount: parseEther("0.01") })).address);
  return out;
};

/** The coordinator stored each deposit once (one row per tx_ref) and no other; all final. */
const expectStoredOnce = async (refs: string[], status = "CONFIRMED") => {
  const stored = await deposits(tc.sql);
  for (const r of refs) expect(stored.get(r)?.status, r).toBe(status);
  expect(stored.size).toBe(refs.length);
};
const seenBy = async (a: TestAgent) => (await metricValue(a.common.metrics, "ponte_agent_deposits_total", { status: "seen" })) ?? 0;
const atHead = async (timeout = 5_000) => {
  const tip = await anvil.height();
  await eventually(async () => (await cursorHeight(tc.sql)) === tip, { timeout });
  return tip;
};

describe("EVM follower faults (anvil, real coordinator)", () => {
  it("catches up after downtime from the coordinator's cursor, finding every deposit once", async () => {
    await setup();
    const first = await start({ batchSize: 25 });
    await eventually(async () => (await poolSize()) === 12);
    const addrs = await allocateMany(6);
    await eventually(() => first.handle.watch.size === 6);
    const h0 = await atHead();
    await first.stop();
    agents.pop();

    const refs = await depositBurst(addrs, 24);
    await anvil.mine(150);
    const second = await start({ batchSize: 25 });
    const tip = await atHead(15_000);
    await expectStoredOnce(refs);
    // The second agent reported each deposit once.
    expect(await seenBy(second)).toBe(refs.length);
    for (const r of refs) expect(timesReported(second, r), r).toBe(1);
    // Catch-up in batches: every report but the last held batch_size blocks.
    const batches = await reportedBatches(tc.sql, h0, tip);
    expect(batches[0]!.from).toBe(h0 + 1n);
    expect(batches.slice(0, -1).every((b) => b.blocks === 25)).toBe(true);
    expect(batches.reduce((s, b) => s + b.blocks, 0)).toBe(Number(tip - h0));
  });

  it("fills the gap from its cursor when the ws connection drops", async () => {
    await setup();
    const agent = await start({ pollIntervalMs: 10_000 });
    await eventually(async () => agent.heads.connected && (await poolSize()) === 12);
    const [a] = await allocateMany(1);
    await eventually(() => agent.handle.watch.size === 1);
    const e1 = await mined(anvil.wallet(0).sendTransaction({ to: a, value: 1n }));
    // With a 10 s poll interval, seeing this within 3 s proves the ws subscription woke the follower.
    await eventually(async () => (await deposits(tc.sql)).has(`${e1.hash}:native`), { timeout: 3_000 });
    agent.heads.dropConnection();
    await eventually(() => !agent.heads.connected);
    const e2 = await mined(anvil.wallet(0).sendTransaction({ to: a, value: 2n }));
    await anvil.mine(5);
    await eventually(() => agent.heads.connected, { timeout: 5_000 });
    // Well inside the 10 s poll interval: the reconnection itself made the follower read the gap.
    await eventually(async () => (await deposits(tc.sql)).has(`${e2.hash}:native`), { timeout: 3_000 });
    await atHead(3_000);
    await expectStoredOnce([`${e1.hash}:native`, `${e2.hash}:native`]);
    expect(await seenBy(agent)).toBe(2);
  }, 30_000);

  it("backs off on RPC errors and fails over between endpoints, skipping no block", async () => {
    await setup();
    // Every third request fails with a 500; the first endpoint is not listening at all.
    const flaky = await startRpcProxy(anvil.http, { failHttp: (n) => (n % 3 === 0 ? 500 : undefined) });
    cleanups.push(() => flaky.stop());
    const dead = `http://127.0.0.1:${await freePort()}`;
    const agent = await start({ rpc: [{ http: dead, ws: undefined }, { http: flaky.url, ws: undefined }], batchSize: 10, pollIntervalMs: 100 });
    await eventually(async () => (await poolSize()) === 12, { timeout: 10_000 });
    const addrs = await allocateMany(4);
    await eventually(() => agent.handle.watch.size === 4);
    const refs = await depositBurst(addrs, 12, 4);
    await anvil.mine(3);
    const tip = await atHead(20_000);
    await expectStoredOnce(refs);
    expect(await seenBy(agent)).toBe(refs.length);
    // Every block from the first to the tip is stored, linked, as the node has it.
    const stored = await tc.sql<{ height: bigint; hash: string; parent_hash: string }[]>`
      SELECT height, hash, parent_hash FROM chain_blocks WHERE network = ${NETWORK} ORDER BY height`;
    expect(stored.at(-1)!.height).toBe(tip);
    for (let i = 1; i < stored.length; i++) {
      expect(stored[i]!.height).toBe(stored[i - 1]!.height + 1n);
      expect(stored[i]!.parent_hash).toBe(stored[i - 1]!.hash);
    }
    const errors = (await agent.common.metrics.getSingleMetric("ponte_agent_rpc_errors_total")!.get()).values.reduce((s, v) => s + v.value, 0);
    expect(errors).toBeGreaterThan(0);
  }, 40_000);

  it("hands over to the standby when the active agent stops, missing nothing and repeating nothing", async () => {
    await setup();
    const a = await start({}, "agent-a");
    await eventually(async () => a.handle.leaseHeld && (await poolSize()) === 12);
    const b = await start({}, "agent-b");
    const addrs = await allocateMany(4);
    await eventually(() => a.handle.watch.size === 4);
    const before = await depositBurst(addrs, 6, 3);
    await atHead();
    expect(b.handle.leaseHeld).toBe(false);
    // The standby never reported anything.
    expect(await seenBy(b)).toBe(0);
    expect(await metricValue(b.common.metrics, "ponte_agent_processed_height")).toBeUndefined();

    await a.stop();
    const after = await depositBurst(addrs, 6, 3);
    await eventually(() => b.handle.leaseHeld, { timeout: 3_000 });
    await atHead(8_000);
    await anvil.mine(3);
    await atHead();
    await expectStoredOnce([...before, ...after]);
    // A reported what came before the handover, B what came after: none twice, none missed.
    expect(await seenBy(a)).toBe(before.length);
    expect(await seenBy(b)).toBe(after.length);
    for (const r of before) expect([timesReported(a, r), timesReported(b, r)], r).toEqual([1, 0]);
    for (const r of after) expect([timesReported(a, r), timesReported(b, r)], r).toEqual([0, 1]);
  }, 30_000);

  it("resumes from the coordinator's cursor after INVALID_STATE and after a watch-stream drop", async () => {
    // A lease long enough to outlast the coordinator's restart: the agent keeps its term.
    await setup({ ttlMs: 5_000 });
    const agent = await start({ batchSize: 5 });
    await eventually(async () => (await poolSize()) === 12);
    const addrs = await allocateMany(2);
    await eventually(() => agent.handle.watch.size === 2);
    const first = await depositBurst(addrs, 4, 2);
    const tip = await atHead();
    const epoch = agent.handle.leaseEpoch;

    // The coordinator restarts from an older state (its cursor restored from a backup, six blocks
    // back); a trade is taken meanwhile. The agent's watch stream ends with the old process.
    await tc.stop();
    const back = tip - 6n;
    try {
      const blk = await anvil.provider.getBlock(Number(back));
      await tc.sql.begin(async (tx) => {
        await tx`UPDATE chain_cursors SET height = ${back.toString()}, hash = ${blk!.hash!.toLowerCase()},
                   finalized_height = LEAST(finalized_height, ${back.toString()}) WHERE network = ${NETWORK}`;
        await tx`DELETE FROM chain_blocks WHERE network = ${NETWORK} AND height > ${back.toString()}`;
      });
      await createTrade(tc.sql, { symbol: "ETH", amount: parseEther("0.01") });
    } finally {
      await tc.start();
    }
    const second = await depositBurst(addrs, 4, 2);
    const tip2 = await atHead(8_000);
    // The re-snapshot carries the trade taken while the agent was disconnected.
    await eventually(() => agent.handle.watch.size === 3);
    // Same term throughout: the agent's next report was refused, it re-read the cursor and
    // reported from there on.
    expect(agent.handle.leaseEpoch).toBe(epoch);
    expect(await tc.grpcCalls("reportBlocks", "INVALID_STATE")).toBeGreaterThan(0);
    const batches = await reportedBatches(tc.sql, back, tip2);
    expect(batches[0]!.from).toBe(back + 1n);
    expect(batches.reduce((s, b) => s + b.blocks, 0)).toBe(Number(tip2 - back));
    // Every deposit is there once; re-reading from the older cursor re-reported some (idempotent on tx_ref).
    await anvil.mine(3);
    await atHead();
    await expectStoredOnce([...first, ...second]);
  }, 30_000);
});
