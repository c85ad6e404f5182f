import { startFakeCoordinator, type FakeCoordinator } from "@ponte/agent-runtime/testing";
import { eventually, freePort } from "@ponte/common/testing";
import { parseEther, type Contract } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anvilConfig, startTestAgent, type TestAgent } from "../_test/agent.js";
import { deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { metricValue } from "../_test/metrics.js";
import { startRpcProxy } from "../_test/proxy.js";
import type { EvmConfig, TokenConfig } from "../config/index.js";

let anvil: Anvil;
let usdt: Contract;
let tokens: TokenConfig[];
let fake: FakeCoordinator;
let snapshot: string;
const agents: TestAgent[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  anvil = await startAnvil();
  usdt = await deployToken(anvil.wallet(0), "USDT", 6);
  tokens = [{ symbol: "USDT", contract: await usdt.getAddress(), decimals: 6 }];
  await mined(usdt.getFunction("mint")(anvil.wallet(0).address, 10n ** 15n));
  snapshot = await anvil.rpc<string>("evm_snapshot");
}, 60_000);
afterAll(async () => anvil?.stop());

const setup = async () => {
  await anvil.rpc("evm_revert", [snapshot]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
  fake = await startFakeCoordinator({ leaseTtlMs: 900, target: 12, lowWater: 1 });
};
afterEach(async () => {
  while (agents.length) await agents.pop()!.stop();
  while (cleanups.length) await cleanups.pop()!();
  await fake?.stop();
});

const start = async (o: Partial<EvmConfig> = {}, id?: string) => {
  const a = await startTestAgent(fake, anvilConfig(anvil, tokens, o), { agentId: id });
  agents.push(a);
  return a;
};

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

const allocateMany = (n: number) => Array.from({ length: n }, (_, i) => fake.allocate(`trd_${i}`).address);

const expectExactlyOnce = (refs: string[]) => {
  for (const r of refs) expect(fake.deposits.get(r)?.reports, r).toBe(1);
  expect(fake.deposits.size).toBe(refs.length);
};

describe("EVM follower faults (anvil, fake coordinator)", () => {
  it("catches up after downtime from the coordinator's cursor, finding every deposit once", async () => {
    await setup();
    const first = await start({ batchSize: 25 });
    await eventually(() => fake.pool.length === 12);
    const addrs = allocateMany(6);
    await eventually(() => first.handle.watch.size === 6);
    const h0 = await anvil.height();
    await eventually(() => fake.cursor.block?.height === h0);
    await first.stop();
    agents.pop();

    const refs = await depositBurst(addrs, 24);
    await anvil.mine(150);
    const tip = await anvil.height();
    const reportsBefore = fake.reports.length;
    const second = await start({ batchSize: 25 });
    await eventually(() => fake.cursor.block?.height === tip, { timeout: 15_000 });
    expectExactlyOnce(refs);
    // Batches: every report but the last holds batch_size blocks.
    const sizes = fake.reports.slice(reportsBefore).map((r) => r.blocks.length);
    expect(sizes.slice(0, -1).every((s) => s === 25)).toBe(true);
    expect(Number(tip - h0)).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(await metricValue(second.common.metrics, "ponte_agent_deposits_total", { status: "seen" })).toBe(refs.length);
  });

  it("fills the gap from its cursor when the ws connection drops", async () => {
    await setup();
    const agent = await start({ pollIntervalMs: 10_000 });
    await eventually(() => agent.heads.connected && fake.pool.length === 12);
    const [a] = allocateMany(1);
    await eventually(() => agent.handle.watch.size === 1);
    const e1 = await mined(anvil.wallet(0).sendTransaction({ to: a, value: 1n }));
    // With a 10 s poll interval, seeing this within 3 s proves the ws subscription woke the follower.
    await eventually(() => fake.deposits.has(`${e1.hash}:native`), { timeout: 3_000 });
    agent.heads.dropConnection();
    await eventually(() => !agent.heads.connected);
    const e2 = await mined(anvil.wallet(0).sendTransaction({ to: a, value: 2n }));
    await anvil.mine(5);
    await eventually(() => agent.heads.connected, { timeout: 5_000 });
    // Well inside the 10 s poll interval: the reconnection itself made the follower read the gap.
    await eventually(() => fake.deposits.has(`${e2.hash}:native`), { timeout: 3_000 });
    const tip = await anvil.height();
    await eventually(() => fake.cursor.block?.height === tip, { timeout: 3_000 });
    expectExactlyOnce([`${e1.hash}:native`, `${e2.hash}:native`]);
  }, 30_000);

  it("backs off on RPC errors and fails over between endpoints, skipping no block", async () => {
    await setup();
    // Every third request fails with a 500; the first endpoint is not listening at all.
    const flaky = await startRpcProxy(anvil.http, { failHttp: (n) => (n % 3 === 0 ? 500 : undefined) });
    cleanups.push(() => flaky.stop());
    const dead = `http://127.0.0.1:${await freePort()}`;
    const agent = await start({ rpc: [{ http: dead, ws: undefined }, { http: flaky.url, ws: undefined }], batchSize: 10, pollIntervalMs: 100 });
    await eventually(() => fake.pool.length === 12, { timeout: 10_000 });
    const addrs = allocateMany(4);
    await eventually(() => agent.handle.watch.size === 4);
    const refs = await depositBurst(addrs, 12, 4);
    const tip = await anvil.height();
    await eventually(() => fake.cursor.block?.height === tip, { timeout: 20_000 });
    expectExactlyOnce(refs);
    const errors = (await agent.common.metrics.getSingleMetric("ponte_agent_rpc_errors_total")!.get()).values.reduce((s, v) => s + v.value, 0);
    expect(errors).toBeGreaterThan(0);
  }, 40_000);

  it("hands over to the standby when the active agent stops, missing nothing and repeating nothing", async () => {
    await setup();
    const a = await start({}, "agent-a");
    await eventually(() => a.handle.leaseHeld && fake.pool.length === 12);
    const b = await start({}, "agent-b");
    const addrs = allocateMany(4);
    await eventually(() => a.handle.watch.size === 4);
    const before = await depositBurst(addrs, 6, 3);
    await eventually(async () => fake.cursor.block?.height === (await anvil.height()), { timeout: 5_000 });
    expect(b.handle.leaseHeld).toBe(false);
    expect(fake.calls.filter((c) => c.method === "ReportBlocks" && c.agentId === "agent-b")).toHaveLength(0);

    await a.stop();
    const after = await depositBurst(addrs, 6, 3);
    await eventually(() => b.handle.leaseHeld, { timeout: 3_000 });
    await eventually(async () => fake.cursor.block?.height === (await anvil.height()), { timeout: 8_000 });
    expectExactlyOnce([...before, ...after]);
    const reporters = fake.calls.filter((c) => c.method === "ReportBlocks" && c.ok).map((c) => c.agentId);
    // A then B, never interleaved.
    expect(reporters.join(",")).toMatch(/^(agent-a,)*agent-a(,agent-b)+$/);
  }, 30_000);

  it("resumes from the coordinator's cursor after INVALID_STATE and after a watch-stream drop", async () => {
    await setup();
    const agent = await start({ batchSize: 5 });
    await eventually(() => fake.pool.length === 12);
    const addrs = allocateMany(2);
    await eventually(() => agent.handle.watch.size === 2);
    const first = await depositBurst(addrs, 4, 2);
    const tip = await anvil.height();
    await eventually(() => fake.cursor.block?.height === tip);
    // The coordinator's cursor moves back behind the agent's back (e.g. restored from a backup).
    const back = tip - 6n;
    const blk = await anvil.provider.getBlock(Number(back));
    fake.cursor.block = { height: back, hash: blk!.hash!.toLowerCase() };
    const reportsBefore = fake.reports.length;
    fake.watch([{ address: "0x000000000000000000000000000000000000dEaD", tradeId: "trd_dead" }]);
    fake.dropWatchStreams();
    const second = await depositBurst(addrs, 4, 2);
    const tip2 = await anvil.height();
    await eventually(() => fake.cursor.block?.height === tip2, { timeout: 8_000 });
    await eventually(() => agent.handle.watch.size === 3);
    // The agent's next report was refused; it re-read the cursor and reported from there on.
    expect(fake.reports[reportsBefore]!.blocks[0]!.height).toBe(back + 1n);
    // Every deposit is there; re-reading from the older cursor re-reported some (idempotent on tx_ref).
    for (const r of [...first, ...second]) expect(fake.deposits.get(r)?.status).toBe("confirmed");
    expect(fake.deposits.size).toBe(8);
  }, 30_000);
});
