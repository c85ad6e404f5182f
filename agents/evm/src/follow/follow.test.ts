import { eventually } from "@ponte/common/testing";
import { parseEther, type Contract } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anvilConfig, startTestAgent, timesReported, type TestAgent } from "../_test/agent.js";
import { AGENT_MNEMONIC, deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { createTrade, cursorHeight, deposits, history, pool, startTestCoordinator, tradeStatus, type TestCoordinator } from "../_test/coordinator.js";
import { metricValue } from "../_test/metrics.js";
import type { TokenConfig } from "../config/index.js";
import { createEvmDeriver } from "../derive/index.js";

let anvil: Anvil;
let usdt: Contract;
let tokens: TokenConfig[];
let tc: TestCoordinator;
let snapshot: string;
const agents: TestAgent[] = [];

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
const setup = async (o: { target?: number } = {}) => {
  await anvil.rpc("evm_revert", [snapshot]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
  await tc.reset({ LEASE_TTL_MS: "1000", ADDRESS_POOL_TARGET: String(o.target ?? 5), ADDRESS_POOL_LOW_WATER: "1" });
};
afterEach(async () => {
  while (agents.length) await agents.pop()!.stop();
});

const start = async (o: Parameters<typeof anvilConfig>[2] = {}, id?: string) => {
  const a = await startTestAgent(tc.address, anvilConfig(anvil, tokens, o), { agentId: id });
  agents.push(a);
  return a;
};
const sendEth = (to: string, eth: string) => mined(anvil.wallet(0).sendTransaction({ to, value: parseEther(eth) }));
const sendUsdt = (to: string, units: bigint) => mined(usdt.getFunction("transfer")(to, units));
/** The tx_ref of a token transfer's log, once the transfer is mined (anvil mines a sent one a moment later). */
const tokenRef = (hash: string): Promise<string> =>
  eventually(async () => {
    const r = await anvil.provider.getTransactionReceipt(hash);
    return r ? `${hash}:${r.logs[0]!.index}` : false;
  }) as Promise<string>;
const poolSize = async () => (await pool(tc.sql)).length;
/** A trade on the next pool address, once the agent watches it. */
const trade = async (agent: TestAgent, o: Parameters<typeof createTrade>[1]) => {
  const t = await createTrade(tc.sql, o);
  await eventually(() => agent.handle.watch.get(t.address) !== undefined);
  return t;
};
const reorgsReported = (agent: TestAgent) => agent.logs.filter((l) => l.msg === "Reorg reported");

describe("EVM follower against anvil (real coordinator)", () => {
  it("fills the pool with the agent's BIP44 addresses, finds deposits at the head and confirms them at depth", async () => {
    await setup();
    const agent = await start();
    await eventually(async () => (await poolSize()) === 5);
    const deriver = createEvmDeriver(AGENT_MNEMONIC);
    const stored = await pool(tc.sql);
    expect(stored.map((p) => p.address)).toEqual([0, 1, 2, 3, 4].map((i) => deriver.derive(i).address));
    expect(stored[3]!.derivation_path).toBe("m/44'/60'/0'/0/3");

    const a = await trade(agent, { symbol: "ETH", amount: parseEther("0.25") });
    const b = await trade(agent, { symbol: "USDT", amount: 12_345_678n, contract: tokens[0]!.contract });
    expect(agent.handle.watch.size).toBe(2);
    // The allocations top the pool up again.
    await eventually(async () => (await poolSize()) === 7);
    expect((await pool(tc.sql)).filter((p) => p.status === "AVAILABLE")).toHaveLength(5);

    const eth = await sendEth(a.address, "0.25");
    const tok = await sendUsdt(b.address, 12_345_678n);
    const ethRef = `${eth.hash}:native`;
    const tokRef = await tokenRef(tok.hash);
    await eventually(async () => (await deposits(tc.sql)).size === 2, { timeout: 5_000 });
    const seen = await deposits(tc.sql);
    expect(seen.get(ethRef)).toMatchObject({ address: a.address, contract: "", amount: "250000000000000000", block_height: eth.blockNumber, status: "SEEN", trade_id: a.tradeId });
    expect(seen.get(tokRef)).toMatchObject({ address: b.address, contract: tokens[0]!.contract.toLowerCase(), amount: "12345678", status: "SEEN", trade_id: b.tradeId });
    expect(await tradeStatus(tc.sql, a.tradeId)).toBe("DEPOSIT_DETECTED");

    await anvil.mine(3);
    await eventually(async () => [...(await deposits(tc.sql)).values()].every((d) => d.status === "CONFIRMED"), { timeout: 5_000 });
    for (const t of [a, b]) expect(await history(tc.sql, t.tradeId)).toEqual(["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    // Each deposit reported once.
    expect([timesReported(agent, ethRef), timesReported(agent, tokRef)]).toEqual([1, 1]);
    const head = await anvil.height();
    await eventually(async () => (await cursorHeight(tc.sql)) === head);
    const reg = agent.common.metrics;
    expect(await metricValue(reg, "ponte_agent_deposits_total", { status: "seen" })).toBe(2);
    expect(await metricValue(reg, "ponte_agent_deposits_total", { status: "confirmed" })).toBe(2);
    expect(await metricValue(reg, "ponte_agent_lease_held")).toBe(1);
    expect(await metricValue(reg, "ponte_agent_pool_available_addresses")).toBe(5);
    expect(await metricValue(reg, "ponte_agent_processed_height")).toBe(Number(head));
    expect(await metricValue(reg, "ponte_agent_head_lag_blocks")).toBe(0);
    expect(await metricValue(reg, "ponte_agent_rpc_latency_seconds_count", { method: "eth_getBlockByNumber" })).toBeGreaterThan(0);
  });

  it("reports a deposit removed by a reorg (snapshot/revert) and re-reports it once when it comes back", async () => {
    await setup();
    const agent = await start();
    await eventually(async () => (await poolSize()) === 5);
    const a = await trade(agent, { symbol: "ETH", amount: parseEther("1") });
    const base = await anvil.rpc<string>("evm_snapshot");
    const w = anvil.wallet(1);
    const raw = await w.signTransaction(await w.populateTransaction({ to: a.address, value: parseEther("1"), gasLimit: 21_000n }));
    const hash = (await anvil.rpc<string>("eth_sendRawTransaction", [raw])).toLowerCase();
    await anvil.mine(1);
    const ref = `${hash}:native`;
    await eventually(async () => (await deposits(tc.sql)).get(ref)?.status === "SEEN", { timeout: 5_000 });
    const depositHeight = (await deposits(tc.sql)).get(ref)!.block_height!;
    await eventually(async () => (await cursorHeight(tc.sql)) === depositHeight + 1n);
    expect(await tradeStatus(tc.sql, a.tradeId)).toBe("DEPOSIT_DETECTED");

    // The chain without the deposit, one block longer than the old one.
    await anvil.rpc("evm_revert", [base]);
    await anvil.mine(3);
    await eventually(async () => (await deposits(tc.sql)).get(ref)?.status === "REORGED", { timeout: 5_000 });
    expect(reorgsReported(agent)).toHaveLength(1);
    expect(reorgsReported(agent)[0]).toMatchObject({ common_ancestor: (depositHeight - 1n).toString(), depth: 2, orphaned: 1 });
    expect(await metricValue(agent.common.metrics, "ponte_agent_deposits_total", { status: "reorged" })).toBe(1);
    expect(await tradeStatus(tc.sql, a.tradeId)).toBe("PENDING");

    // The same transaction lands again on the new chain.
    await anvil.rpc("eth_sendRawTransaction", [raw]);
    await anvil.mine(1);
    await eventually(async () => (await deposits(tc.sql)).get(ref)?.status === "SEEN", { timeout: 5_000 });
    await anvil.mine(3);
    await eventually(async () => (await deposits(tc.sql)).get(ref)?.status === "CONFIRMED", { timeout: 5_000 });
    const d = (await deposits(tc.sql)).get(ref)!;
    expect(d).toMatchObject({ amount: "1000000000000000000" });
    expect(d.block_height).toBeGreaterThan(depositHeight);
    expect(d.block_hash).toBe((await anvil.provider.getTransactionReceipt(hash))!.blockHash.toLowerCase());
    // Reported twice in all: on the old chain, then once on the new one.
    expect(timesReported(agent, ref)).toBe(2);
    expect(reorgsReported(agent)).toHaveLength(1);
    expect(await history(tc.sql, a.tradeId)).toEqual(["DEPOSIT_DETECTED", "PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
  });

  it("computes the orphaned tx_refs of an anvil_reorg and re-reports a deposit re-included at another height", async () => {
    await setup();
    const agent = await start({ finality: { kind: "confirmations", confirmations: 10 } });
    await eventually(async () => (await poolSize()) === 5);
    const a = await trade(agent, { symbol: "ETH", amount: parseEther("0.5") });
    const b = await trade(agent, { symbol: "USDT", amount: 7n, contract: tokens[0]!.contract });
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
    await eventually(async () => (await cursorHeight(tc.sql)) === tip && (await deposits(tc.sql)).size === 2, { timeout: 5_000 });
    const tokHeight = (await deposits(tc.sql)).get(tokRef)!.block_height!;
    const ethBefore = (await deposits(tc.sql)).get(ethRef)!;

    // Replace the token deposit's block and the one above; the transfer is re-included at offset
    // 1 of the replacement blocks, i.e. one block higher than before.
    const depth = Number(tip - tokHeight + 1n);
    await anvil.rpc("anvil_reorg", [depth, [[rawTok7, 1]]]);
    await anvil.mine(1);
    await eventually(
      async () => {
        const d = (await deposits(tc.sql)).get(tokRef);
        return reorgsReported(agent).length === 1 && d?.status === "SEEN" && d.block_height === tokHeight + 1n;
      },
      { timeout: 5_000 },
    );
    expect(reorgsReported(agent)[0]).toMatchObject({ common_ancestor: (tokHeight - 1n).toString(), orphaned: 1 });
    expect(await metricValue(agent.common.metrics, "ponte_agent_deposits_total", { status: "reorged" })).toBe(1);
    expect(timesReported(agent, tokRef)).toBe(2);
    // The native deposit below the ancestor was not touched.
    expect((await deposits(tc.sql)).get(ethRef)).toEqual(ethBefore);
    expect(timesReported(agent, ethRef)).toBe(1);
  });

  it("waits while the node is behind the cursor on the same chain, and reports the reorg once new blocks stop linking", async () => {
    await setup();
    const agent = await start();
    await eventually(async () => (await poolSize()) === 5);
    const a = await trade(agent, { symbol: "ETH", amount: parseEther("0.1") });
    const eth = await sendEth(a.address, "0.1");
    await anvil.mine(1);
    const ref = `${eth.hash}:native`;
    const tip = await anvil.height();
    await eventually(async () => (await cursorHeight(tc.sql)) === tip && (await deposits(tc.sql)).has(ref), { timeout: 5_000 });

    // The node's head drops below the cursor, still on our chain: not a reorg by itself.
    await anvil.rpc("anvil_rollback", [2]);
    expect(await anvil.height()).toBe(tip - 2n);
    const reg = agent.common.metrics;
    await eventually(async () => (await metricValue(reg, "ponte_agent_head_height")) === Number(tip - 2n), { timeout: 5_000 });
    // Several more looks at the lower head (polls every 200 ms), and still no reorg.
    const reads = (await metricValue(reg, "ponte_agent_rpc_latency_seconds_count", { method: "eth_getBlockByNumber" }))!;
    await eventually(async () => (await metricValue(reg, "ponte_agent_rpc_latency_seconds_count", { method: "eth_getBlockByNumber" }))! >= reads + 3, {
      timeout: 5_000,
    });
    expect(reorgsReported(agent)).toHaveLength(0);
    expect(await cursorHeight(tc.sql)).toBe(tip);
    expect((await deposits(tc.sql)).get(ref)?.status).toBe("SEEN");

    await anvil.rpc("evm_setAutomine", [false]);
    await anvil.mine(4);
    await anvil.rpc("evm_setAutomine", [true]);
    await eventually(() => reorgsReported(agent).length === 1, { timeout: 5_000 });
    expect(reorgsReported(agent)[0]).toMatchObject({ common_ancestor: (tip - 2n).toString(), orphaned: 1 });
    const newTip = await anvil.height();
    await eventually(async () => (await cursorHeight(tc.sql)) === newTip, { timeout: 5_000 });
    // Whether anvil put the transaction back in a new block decides whether the deposit reappears.
    const receipt = await anvil.provider.getTransactionReceipt(eth.hash);
    expect((await deposits(tc.sql)).get(ref)?.status).toBe(receipt ? "CONFIRMED" : "REORGED");
  });
});
