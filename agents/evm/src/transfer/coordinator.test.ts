// Transfers end to end with the real coordinator (in process, its own database): sweeps planned
// from confirmed trades, the gas top-up before a token sweep, the fee guard, concurrent refunds
// from the hot wallet, and the agent process killed at the crash points (PONTE_CRASH_AT) between
// recording and broadcasting.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually, startProcess, type RunningProcess } from "@ponte/common/testing";
import { HDNodeWallet, parseEther, Transaction, Wallet, type Contract } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MNEMONIC, deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { createTrade, cursorHeight, startTestCoordinator, stockPool, type TestCoordinator } from "../_test/coordinator.js";
import { metricValue } from "../_test/metrics.js";
import { attemptRows, insertOrder, orderRow, ordersOfTrade, startMiner, startTransferAgent, transferConfig, type TransferAgent } from "../_test/transfer.js";
import type { TokenConfig } from "../config/index.js";
import { createEvmDeriver } from "../derive/index.js";
import { EVM_HOT_WALLET_PATH } from "../keys/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, "..", "..", "dist", "main.js");
const deriver = createEvmDeriver(AGENT_MNEMONIC);
const HOT = HDNodeWallet.fromPhrase(AGENT_MNEMONIC, undefined, EVM_HOT_WALLET_PATH).address;

let anvil: Anvil;
let token: Contract;
let usdt: TokenConfig;
let tc: TestCoordinator;
let miner: { stop(): Promise<void> } | undefined;
const agents: TransferAgent[] = [];
const procs: RunningProcess[] = [];

beforeAll(async () => {
  anvil = await startAnvil();
  token = await deployToken(anvil.wallet(0), "USDT", 6);
  usdt = { symbol: "USDT", contract: await token.getAddress(), decimals: 6 };
  tc = await startTestCoordinator({
    ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": usdt.contract.toLowerCase() }),
    TRANSFER_INTERVAL_MS: "200",
    // Long enough that an in-process agent under a busy test runner keeps its lease.
    LEASE_TTL_MS: "3000",
  });
  await stockPool(tc.address, Array.from({ length: 40 }, (_, i) => deriver.derive(i)));
  await mined(anvil.wallet(0).sendTransaction({ to: HOT, value: parseEther("20") }));
}, 60_000);
afterEach(async () => {
  await miner?.stop();
  miner = undefined;
  while (agents.length) await agents.pop()!.stop();
  while (procs.length) await procs.pop()!.kill("SIGKILL");
});
afterAll(async () => {
  await tc?.close();
  await anvil?.stop();
});

const eth = (a: string) => anvil.provider.getBalance(a);
const usdtOf = async (a: string) => (await token.getFunction("balanceOf")(a)) as bigint;
const nonceOf = async (a: string) => BigInt(await anvil.rpc<string>("eth_getTransactionCount", [a, "latest"]));
const config = () =>
  transferConfig(anvil, [usdt], { rpc: [{ http: anvil.http, ws: anvil.ws }], finality: { kind: "confirmations", confirmations: 2 }, pollIntervalMs: 200, balanceIntervalMs: 200, replaceAfterBlocks: 5 });
async function agent(): Promise<TransferAgent> {
  const a = await startTransferAgent(tc.address, config());
  agents.push(a);
  return a;
}
/**
 * The agent knows the trade's address (its watch set got the coordinator's update): only a payment
 * made after that is sure to be seen at the head — a trade is created before it is paid.
 */
const watching = (a: TransferAgent, address: string) => eventually(() => expect(a.handle.watch.get(address.toLowerCase())).toBeDefined());
/** The index of a pool address, as the trade got it. */
const indexOf = (address: string) => Array.from({ length: 40 }, (_, i) => deriver.derive(i).address).indexOf(address);

describe("transfers with the real coordinator", () => {
  it("registers the hot wallet, exports its balances, and sweeps a confirmed native deposit to it once", async () => {
    const a = await agent();
    await eventually(async () => {
      const [w] = await tc.sql<{ address: string; derivation_path: string; key_ref: string }[]>`
        SELECT address, derivation_path, key_ref FROM system_wallets WHERE network = 'anvil' AND kind = 'hot'`;
      expect(w).toEqual({ address: HOT, derivation_path: "m/44'/60'/1'/0/0", key_ref: "env:(in-process mnemonic)" });
    });
    await eventually(async () => expect(await metricValue(a.common.metrics, "ponte_agent_wallet_balance", { network: "anvil", asset: "native" })).toBeGreaterThan(19));

    const trade = await createTrade(tc.sql, { symbol: "ETH", amount: parseEther("0.02") });
    await watching(a, trade.address);
    const hotBefore = await eth(HOT);
    await mined(anvil.wallet(1).sendTransaction({ to: trade.address, value: parseEther("0.02") }));
    miner = startMiner(anvil);
    const sweep = await eventually(
      async () => {
        const [o] = (await ordersOfTrade(tc.sql, trade.tradeId)).filter((x) => x.kind === "SWEEP");
        expect(o?.status).toBe("CONFIRMED");
        return o!;
      },
      { timeout: 30_000 },
    );
    const attempts = await attemptRows(tc.sql, sweep.id);
    expect(attempts).toHaveLength(1);
    expect(sweep.confirmed_tx_hash).toBe(attempts[0]!.tx_hash);
    expect(sweep.to_address).toBe(HOT);
    const tx = Transaction.from(attempts[0]!.raw_tx);
    expect(tx.value).toBe(parseEther("0.02") - tx.gasLimit * tx.maxFeePerGas!);
    expect((await eth(HOT)) - hotBefore).toBe(tx.value);
    expect(await nonceOf(trade.address)).toBe(1n);
  }, 60_000);

  it("tops up the gas of a token deposit first and sweeps only once the top-up is final", async () => {
    const a = await agent();
    const trade = await createTrade(tc.sql, { symbol: "USDT", amount: 2_000_000_000n, contract: usdt.contract });
    await watching(a, trade.address);
    await mined(token.getFunction("mint")(trade.address, 2_000_000_000n));
    // Blocks only until the deposit is final: from then on none, so the top-up the coordinator
    // orders next is mined (automine) but never final until the test says so.
    await eventually(
      async () => {
        const [t] = await tc.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${trade.tradeId}`;
        if (t!.status === "PAYMENT_CONFIRMED") return;
        await anvil.mine(1);
        throw new Error(`trade is ${t!.status}`);
      },
      { timeout: 30_000, interval: 300 },
    );
    // The coordinator orders a GAS_TOPUP and a SWEEP that depends on it; the top-up goes out.
    const topup = await eventually(
      async () => {
        const o = (await ordersOfTrade(tc.sql, trade.tradeId)).find((x) => x.kind === "GAS_TOPUP");
        expect(o?.status).toBe("BROADCAST");
        return o!;
      },
      { timeout: 30_000 },
    );
    // The agent has processed the block that holds the top-up (its cursor is there): one
    // confirmation of the two needed, so the sweep must still wait, unsigned.
    const [attempt] = await attemptRows(tc.sql, topup.id);
    const receipt = await anvil.provider.getTransactionReceipt(attempt!.tx_hash);
    await eventually(async () => expect(await cursorHeight(tc.sql)).toBeGreaterThanOrEqual(BigInt(receipt!.blockNumber)), { timeout: 20_000 });
    const sweep = (await ordersOfTrade(tc.sql, trade.tradeId)).find((x) => x.kind === "SWEEP")!;
    expect((await orderRow(tc.sql, topup.id)).status).toBe("BROADCAST");
    expect(sweep.status).toBe("PENDING");
    expect(await attemptRows(tc.sql, sweep.id)).toEqual([]);
    expect(await nonceOf(trade.address)).toBe(0n);

    miner = startMiner(anvil);
    await eventually(async () => expect((await orderRow(tc.sql, sweep.id)).status).toBe("CONFIRMED"), { timeout: 30_000 });
    expect((await orderRow(tc.sql, topup.id)).status).toBe("CONFIRMED");
    expect(await usdtOf(trade.address)).toBe(0n);
    expect(await usdtOf(HOT)).toBeGreaterThanOrEqual(2_000_000_000n);
    // The top-up was not reported as a deposit to the trade.
    const deps = await tc.sql<{ contract: string }[]>`SELECT contract FROM deposits WHERE trade_id = ${trade.tradeId}`;
    expect(deps.map((d) => d.contract)).toEqual([usdt.contract.toLowerCase()]);
  }, 90_000);

  it("skips a sweep whose fee is above its max_fee; the deposit stays where it is", async () => {
    const a = await agent();
    // 0.0001 ETH: 5 % of it is far below a transfer's fee.
    const trade = await createTrade(tc.sql, { symbol: "ETH", amount: parseEther("0.0001") });
    await watching(a, trade.address);
    await mined(anvil.wallet(1).sendTransaction({ to: trade.address, value: parseEther("0.0001") }));
    miner = startMiner(anvil);
    const sweep = await eventually(
      async () => {
        const o = (await ordersOfTrade(tc.sql, trade.tradeId)).find((x) => x.kind === "SWEEP");
        expect(o?.status).toBe("SKIPPED");
        return o!;
      },
      { timeout: 30_000 },
    );
    expect(sweep.reason).toMatch(/exceeds max_fee/);
    expect(await attemptRows(tc.sql, sweep.id)).toEqual([]);
    expect(await eth(trade.address)).toBe(parseEther("0.0001"));
    expect(await nonceOf(trade.address)).toBe(0n);
  }, 60_000);

  it("executes two refunds from the hot wallet at once with distinct nonces; both land", async () => {
    await agent();
    miner = startMiner(anvil);
    const to = [Wallet.createRandom().address, Wallet.createRandom().address];
    const ids = await Promise.all(to.map((t, i) => insertOrder(tc.sql, { kind: "REFUND", from: HOT, to: t, amount: parseEther("0.3") + BigInt(i) })));
    for (const id of ids) await eventually(async () => expect((await orderRow(tc.sql, id)).status).toBe("CONFIRMED"), { timeout: 30_000 });
    const nonces = await Promise.all(ids.map(async (id) => (await attemptRows(tc.sql, id)).map((a) => a.nonce)));
    expect(nonces.map((n) => n.length)).toEqual([1, 1]);
    expect(nonces[0]![0]).not.toBe(nonces[1]![0]);
    for (const [i, t] of to.entries()) expect(await eth(t)).toBe(parseEther("0.3") + BigInt(i));
  }, 60_000);

  it("replaces a refund stuck by a fee spike; the coordinator records every attempt and exactly one lands", async () => {
    await agent();
    const to = Wallet.createRandom().address;
    const hotNonce = await nonceOf(HOT);
    await anvil.rpc("evm_setAutomine", [false]);
    try {
      const id = await insertOrder(tc.sql, { kind: "REFUND", from: HOT, to, amount: parseEther("0.15") });
      await eventually(async () => expect((await orderRow(tc.sql, id)).status).toBe("BROADCAST"), { timeout: 20_000 });
      const [first] = await attemptRows(tc.sql, id);
      const tx1 = Transaction.from(first!.raw_tx);
      // The base fee jumps far above what the transaction offers: no block takes it until replaced.
      await anvil.rpc("anvil_setNextBlockBaseFeePerGas", [`0x${(tx1.maxFeePerGas! * 20n).toString(16)}`]);
      miner = startMiner(anvil);
      await eventually(async () => expect((await orderRow(tc.sql, id)).status).toBe("CONFIRMED"), { timeout: 60_000 });
      const attempts = await attemptRows(tc.sql, id);
      expect(attempts.length).toBeGreaterThanOrEqual(2);
      const txs = attempts.map((a) => Transaction.from(a.raw_tx));
      expect(new Set(txs.map((t) => t.nonce))).toEqual(new Set([tx1.nonce]));
      expect(txs[1]!.maxFeePerGas! * 1000n).toBeGreaterThanOrEqual(tx1.maxFeePerGas! * 1125n);
      const row = await orderRow(tc.sql, id);
      expect(attempts.map((a) => a.tx_hash)).toContain(row.confirmed_tx_hash);
      expect(await anvil.provider.getTransactionReceipt(first!.tx_hash)).toBeNull();
      expect(await eth(to)).toBe(parseEther("0.15"));
      expect(await nonceOf(HOT)).toBe(hotNonce + 1n);
    } finally {
      await miner?.stop();
      miner = undefined;
      await anvil.rpc("evm_setAutomine", [true]);
      await anvil.rpc("anvil_setNextBlockBaseFeePerGas", ["0x3b9aca00"]);
    }
  }, 90_000);

  it("survives a coordinator restart mid-transfer: the re-sent order is resumed, not signed again", async () => {
    const a = await agent();
    const to = Wallet.createRandom().address;
    const hotNonce = await nonceOf(HOT);
    const id = await insertOrder(tc.sql, { kind: "REFUND", from: HOT, to, amount: parseEther("0.4") });
    // Broadcast (and mined, automine) but not final: no blocks after it yet.
    await eventually(async () => expect((await orderRow(tc.sql, id)).status).toBe("BROADCAST"), { timeout: 20_000 });
    await tc.stop();
    // Final while the coordinator is away: the CONFIRMED report waits for it.
    const retried = async () => (await metricValue(a.common.metrics, "ponte_agent_coordinator_retries_total", { network: "anvil", method: "ReportTransfer" })) ?? 0;
    const before = await retried();
    await anvil.mine(3);
    // The agent saw it final and is retrying the CONFIRMED report against the absent coordinator.
    await eventually(async () => expect(await retried()).toBeGreaterThan(before), { timeout: 20_000 });
    await tc.start();
    miner = startMiner(anvil);
    await eventually(async () => expect((await orderRow(tc.sql, id)).status).toBe("CONFIRMED"), { timeout: 30_000 });
    expect(await attemptRows(tc.sql, id)).toHaveLength(1);
    expect(await eth(to)).toBe(parseEther("0.4"));
    expect(await nonceOf(HOT)).toBe(hotNonce + 1n);
  }, 60_000);
});

describe("the agent process killed between recording and broadcasting", () => {
  const dir = mkdtempSync(join(tmpdir(), "ponte-evm-transfer-"));
  const configFile = (): string => {
    const example = JSON.parse(readFileSync(join(here, "..", "..", "config", "anvil.json"), "utf8")) as Record<string, unknown>;
    const file = join(dir, "anvil.json");
    writeFileSync(file, JSON.stringify({ ...example, rpc: [{ http: anvil.http, ws: anvil.ws }], poll_interval_ms: 200 }));
    return file;
  };
  const run = async (name: string, env: Record<string, string> = {}) => {
    const p = await startProcess({
      name,
      entry,
      env: {
        EVM_CONFIG: configFile(),
        SEED_SOURCE: "env",
        EVM_SEED_MNEMONIC: AGENT_MNEMONIC,
        COORDINATOR_ADDR: tc.address,
        ASSET_CONTRACT_OVERRIDES: JSON.stringify({ "anvil:USDT": usdt.contract.toLowerCase() }),
        METRICS_PORT: "0",
        LOG_LEVEL: "info",
        AGENT_ID: name,
        ...env,
      },
      readyLog: "Agent started",
    });
    procs.push(p);
    return p;
  };

  for (const point of ["transfer.after_sign", "transfer.after_broadcast"] as const) {
    it(`exactly one transaction lands when killed at ${point} and restarted`, async () => {
      const i = point === "transfer.after_sign" ? 30 : 31;
      const from = deriver.derive(i).address;
      expect(indexOf(from)).toBe(i);
      await mined(anvil.wallet(1).sendTransaction({ to: from, value: parseEther("0.5") }));
      const hotBefore = await eth(HOT);
      const first = await run(`crash-${i}`, { PONTE_CRASH_AT: point });
      const id = await insertOrder(tc.sql, { kind: "SWEEP", from, to: HOT, amount: parseEther("0.5"), deductFee: true });
      await eventually(() => first.exitCode !== null, { timeout: 20_000, message: `the agent did not stop at ${point}` });
      const [signed] = await attemptRows(tc.sql, id);
      expect(signed).toMatchObject({ attempt: 1, status: "SIGNED" });
      const onChain = await anvil.rpc("eth_getTransactionByHash", [signed!.tx_hash]);
      if (point === "transfer.after_sign") expect(onChain).toBeNull();
      else expect(onChain).not.toBeNull();

      await run(`resume-${i}`);
      miner = startMiner(anvil);
      await eventually(async () => expect((await orderRow(tc.sql, id)).status).toBe("CONFIRMED"), { timeout: 30_000 });
      const attempts = await attemptRows(tc.sql, id);
      expect(attempts.map((a) => a.tx_hash)).toEqual([signed!.tx_hash]);
      expect((await orderRow(tc.sql, id)).confirmed_tx_hash).toBe(signed!.tx_hash);
      expect(await nonceOf(from)).toBe(1n);
      expect((await eth(HOT)) - hotBefore).toBe(Transaction.from(signed!.raw_tx).value);
    }, 60_000);
  }
});
