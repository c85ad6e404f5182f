import { startFakeCoordinator, type FakeCoordinator } from "@ponte/agent-runtime/testing";
import { eventually } from "@ponte/common/testing";
import { parseEther, type Contract } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anvilConfig, startTestAgent, type TestAgent } from "../_test/agent.js";
import { deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { createEvmDeriver } from "../derive/index.js";
import { AGENT_MNEMONIC } from "../_test/anvil.js";
import type { TokenConfig } from "../config/index.js";
import { metricValue } from "../_test/metrics.js";

let anvil: Anvil;
let usdt: Contract;
let tokens: TokenConfig[];
let fake: FakeCoordinator;
let snapshot: string;
const agents: TestAgent[] = [];

beforeAll(async () => {
  anvil = await startAnvil();
  usdt = await deployToken(anvil.wallet(0), "USDT", 6);
  tokens = [{ symbol: "USDT", contract: await usdt.getAddress(), decimals: 6 }];
  await mined(usdt.getFunction("mint")(anvil.wallet(0).address, 10n ** 15n));
  snapshot = await anvil.rpc<string>("evm_snapshot");
}, 60_000);
afterAll(async () => anvil?.stop());

// Each test starts from the same chain and a fresh coordinator.
const setup = async (o: { target?: number } = {}) => {
  await anvil.rpc("evm_revert", [snapshot]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
  fake = await startFakeCoordinator({ leaseTtlMs: 1_000, target: o.target ?? 5, lowWater: 1 });
};
afterEach(async () => {
  while (agents.length) await agents.pop()!.stop();
  await fake?.stop();
});

const start = async (o: Parameters<typeof anvilConfig>[2] = {}, id?: string) => {
  const a = await startTestAgent(fake, anvilConfig(anvil, tokens, o), { agentId: id });
  agents.push(a);
  return a;
};
const sendEth = (to: string, eth: string) => mined(anvil.wallet(0).sendTransaction({ to, value: parseEther(eth) }));
const sendUsdt = (to: string, units: bigint) => mined(usdt.getFunction("transfer")(to, units));
const tokenRef = async (hash: string) => {
  const r = await anvil.provider.getTransactionReceipt(hash);
  return `${hash}:${r!.logs[0]!.index}`;
};

describe("EVM follower against anvil (fake coordinator)", () => {
  it("fills the pool with the agent's BIP44 addresses, finds deposits at the head and confirms them at depth", async () => {
    await setup();
    const agent = await start();
    await eventually(() => fake.pool.length === 5);
    const deriver = createEvmDeriver(AGENT_MNEMONIC);
    expect(fake.pool.map((p) => p.address)).toEqual([0, 1, 2, 3, 4].map((i) => deriver.derive(i).address));
    expect(fake.pool[3]!.derivationPath).toBe("m/44'/60'/0'/0/3");

    const a = fake.allocate("trd_native");
    const b = fake.allocate("trd_token", tokens[0]!.contract);
    await eventually(() => agent.handle.watch.size === 2);
    // An allocation tops the pool up again.
    await eventually(() => fake.pool.length === 7);

    const eth = await sendEth(a.address, "0.25");
    const tok = await sendUsdt(b.address, 12_345_678n);
    const ethRef = `${eth.hash}:native`;
    const tokRef = await tokenRef(tok.hash);
    await eventually(() => fake.deposits.has(ethRef) && fake.deposits.has(tokRef), { timeout: 5_000 });
    expect(fake.deposits.get(ethRef)).toMatchObject({ address: a.address, contract: "", amount: "250000000000000000", height: eth.blockNumber, status: "seen" });
    expect(fake.deposits.get(tokRef)).toMatchObject({ address: b.address, contract: tokens[0]!.contract.toLowerCase(), amount: "12345678", status: "seen" });

    await anvil.mine(3);
    await eventually(() => fake.deposits.get(tokRef)?.status === "confirmed" && fake.deposits.get(ethRef)?.status === "confirmed", { timeout: 5_000 });
    expect([...fake.deposits.values()].map((d) => d.reports)).toEqual([1, 1]);
    const head = await anvil.height();
    await eventually(() => fake.cursor.block?.height === head);
    const reg = agent.common.metrics;
    expect(await metricValue(reg, "ponte_agent_deposits_total", { status: "seen" })).toBe(2);
    expect(await metricValue(reg, "ponte_agent_deposits_total", { status: "confirmed" })).toBe(2);
    expect(await metricValue(reg, "ponte_agent_lease_held")).toBe(1);
    expect(await metricValue(reg, "ponte_agent_processed_height")).toBe(Number(head));
    expect(await metricValue(reg, "ponte_agent_head_lag_blocks")).toBe(0);
    expect(await metricValue(reg, "ponte_agent_rpc_latency_seconds_count", { method: "eth_getBlockByNumber" })).toBeGreaterThan(0);
  });

  it("reports a deposit removed by a reorg (snapshot/revert) and re-reports it once when it comes back", async () => {
    await setup();
    await start();
    await eventually(() => fake.pool.length === 5);
    const a = fake.allocate("trd_reorg");
    const base = await anvil.rpc<string>("evm_snapshot");
    const w = anvil.wallet(1);
    const raw = await w.signTransaction(await w.populateTransaction({ to: a.address, value: parseEther("1"), gasLimit: 21_000n }));
    const hash = (await anvil.rpc<string>("eth_sendRawTransaction", [raw])).toLowerCase();
    await anvil.mine(1);
    const ref = `${hash}:native`;
    await eventually(() => fake.deposits.get(ref)?.status === "seen", { timeout: 5_000 });
    const depositHeight = fake.deposits.get(ref)!.height;
    await eventually(() => fake.cursor.block?.height === depositHeight + 1n);

    // The chain without the deposit, one block longer than the old one.
    await anvil.rpc("evm_revert", [base]);
    await anvil.mine(3);
    await eventually(() => fake.deposits.get(ref)?.status === "reorged", { timeout: 5_000 });
    expect(fake.reorgs).toHaveLength(1);
    expect(fake.reorgs[0]!.orphanedTxRefs).toEqual([ref]);
    expect(fake.reorgs[0]!.commonAncestor!.height).toBe(depositHeight - 1n);
    expect(fake.reorgs[0]!.depth).toBe(2);

    // The same transaction lands again on the new chain.
    await anvil.rpc("eth_sendRawTransaction", [raw]);
    await anvil.mine(1);
    await eventually(() => fake.deposits.get(ref)?.status === "seen", { timeout: 5_000 });
    await anvil.mine(3);
    await eventually(() => fake.deposits.get(ref)?.status === "confirmed", { timeout: 5_000 });
    expect(fake.deposits.get(ref)).toMatchObject({ reports: 2, reappeared: 1, amount: "1000000000000000000" });
    expect(fake.reorgs).toHaveLength(1);
  });

  it("computes the orphaned tx_refs of an anvil_reorg and re-reports a deposit re-included at another height", async () => {
    await setup();
    await start({ finality: { kind: "confirmations", confirmations: 10 } });
    await eventually(() => fake.pool.length === 5);
    const a = fake.allocate("trd_a");
    const b = fake.allocate("trd_b", tokens[0]!.contract);
    const eth = await sendEth(a.address, "0.5");
    // Wallet 2 gets tokens first (its own block), then signs the transfer we re-include later.
    const w = anvil.wallet(2);
    await mined(usdt.getFunction("transfer")(w.address, 100n));
    const rawTok7 = await w.signTransaction(
      await w.populateTransaction({ to: tokens[0]!.contract, data: usdt.interface.encodeFunctionData("transfer", [b.address, 7n]), gasLimit: 100_000n }),
    );
    const tokHash = (await anvil.rpc<string>("eth_sendRawTransaction", [rawTok7])).toLowerCase();
    const tokRef = await tokenRef(tokHash);
    await anvil.mine(1);
    const ethRef = `${eth.hash}:native`;
    const tip = await anvil.height();
    await eventually(() => fake.cursor.block?.height === tip && fake.deposits.size === 2, { timeout: 5_000 });
    const tokHeight = fake.deposits.get(tokRef)!.height;

    // Replace the token deposit's block and the one above; the transfer is re-included at offset
    // 1 of the replacement blocks, i.e. one block higher than before.
    const depth = Number(tip - tokHeight + 1n);
    await anvil.rpc("anvil_reorg", [depth, [[rawTok7, 1]]]);
    await anvil.mine(1);
    await eventually(() => fake.reorgs.length === 1 && fake.deposits.get(tokRef)?.status === "seen" && fake.deposits.get(tokRef)!.reappeared === 1, {
      timeout: 5_000,
    });
    expect(fake.reorgs[0]!.commonAncestor!.height).toBe(tokHeight - 1n);
    expect(fake.reorgs[0]!.orphanedTxRefs).toEqual([tokRef]);
    expect(fake.deposits.get(tokRef)!.height).toBe(tokHeight + 1n);
    // The native deposit below the ancestor was not touched.
    expect(fake.deposits.get(ethRef)).toMatchObject({ status: "seen", reports: 1, reappeared: 0 });
  });

  it("waits while the node is behind the cursor on the same chain, and reports the reorg once new blocks stop linking", async () => {
    await setup();
    await start();
    await eventually(() => fake.pool.length === 5);
    const a = fake.allocate("trd_rollback");
    const eth = await sendEth(a.address, "0.1");
    await anvil.mine(1);
    const ref = `${eth.hash}:native`;
    const tip = await anvil.height();
    await eventually(() => fake.cursor.block?.height === tip && fake.deposits.has(ref), { timeout: 5_000 });

    // The node's head drops below the cursor, still on our chain: not a reorg by itself.
    await anvil.rpc("anvil_rollback", [2]);
    expect(await anvil.height()).toBe(tip - 2n);
    await new Promise((r) => setTimeout(r, 800));
    expect(fake.reorgs).toHaveLength(0);

    await anvil.rpc("evm_setAutomine", [false]);
    await anvil.mine(4);
    await anvil.rpc("evm_setAutomine", [true]);
    await eventually(() => fake.reorgs.length === 1, { timeout: 5_000 });
    expect(fake.reorgs[0]!.commonAncestor!.height).toBe(tip - 2n);
    expect(fake.reorgs[0]!.orphanedTxRefs).toEqual([ref]);
    const newTip = await anvil.height();
    await eventually(() => fake.cursor.block?.height === newTip, { timeout: 5_000 });
    // Whether anvil put the transaction back in a new block decides whether the deposit reappears.
    const receipt = await anvil.provider.getTransactionReceipt(eth.hash);
    expect(fake.deposits.get(ref)?.status).toBe(receipt ? "confirmed" : "reorged");
  });
});
