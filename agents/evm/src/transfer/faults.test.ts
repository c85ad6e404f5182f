// The executor's fault cases against anvil, in process: the agent stopping between recording
// and broadcasting (a "restarted" executor gets the order with what was recorded, as the
// coordinator re-sends it), concurrent orders from one address, a fee spike, a revert, a nonce
// taken by someone else, and a sweep waiting for its gas top-up (through the runner).
import { createTransferRunner } from "@ponte/agent-runtime";
import type { Contract } from "ethers";
import { parseEther, Transaction, Wallet } from "ethers";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { silentLogger } from "../_test/rpc.js";
import { agentWallet, createRecorder, order, transferHarness, type Harness } from "../_test/transfer.js";
import type { TokenConfig } from "../config/index.js";

let anvil: Anvil;
let token: Contract;
let usdt: TokenConfig;
let h: Harness;
let snapshot: string;
// Executions a test started: stopped and awaited after each test, so none outlives its chain state.
let stop = new AbortController();
const runs: Promise<unknown>[] = [];
const track = <T>(p: Promise<T>): Promise<T> => {
  runs.push(p.catch(() => undefined));
  return p;
};

beforeAll(async () => {
  anvil = await startAnvil();
  token = await deployToken(anvil.wallet(0), "USDT", 6);
  usdt = { symbol: "USDT", contract: await token.getAddress(), decimals: 6 };
  h = await transferHarness(anvil, [usdt]);
  await mined(anvil.wallet(0).sendTransaction({ to: h.keys.hot.address, value: parseEther("10") }));
  snapshot = await anvil.rpc<string>("evm_snapshot");
});
afterEach(async () => {
  stop.abort();
  await Promise.allSettled(runs.splice(0));
  stop = new AbortController();
  await anvil.rpc("evm_setAutomine", [true]);
  await anvil.rpc("evm_revert", [snapshot]);
  // A base fee set for the next block outlives evm_revert: back to anvil's 1 gwei.
  await anvil.rpc("anvil_setNextBlockBaseFeePerGas", ["0x3b9aca00"]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
});
afterAll(async () => {
  h?.stop();
  await anvil?.stop();
});

const deposit = (i: number) => h.keys.deriver.derive(i).address;
const eth = (a: string) => anvil.provider.getBalance(a);
const nonceOf = async (a: string) => BigInt(await anvil.rpc<string>("eth_getTransactionCount", [a, "latest"]));
const usdtOf = async (a: string) => (await token.getFunction("balanceOf")(a)) as bigint;

async function fundedSweep(i: number) {
  const from = deposit(i);
  await mined(anvil.wallet(0).sendTransaction({ to: from, value: parseEther("1") }));
  return order({ kind: "SWEEP", fromAddress: from, fromDerivationIndex: i, toAddress: h.keys.hot.address, amount: parseEther("1"), deductFee: true });
}

describe("transfer faults", () => {
  it("stopped after SIGNED was recorded, before broadcast: the restarted agent broadcasts the recorded bytes; one transaction lands", async () => {
    const o = await fundedSweep(11);
    const rec = createRecorder();
    // The coordinator stores SIGNED, then the agent is gone before broadcasting.
    rec.failNext("SIGNED", { record: true });
    await expect(h.executor().execute(o, rec.context(stop.signal))).rejects.toThrow(/injected/);
    const [signed] = rec.reports;
    expect(await anvil.rpc("eth_getTransactionByHash", [signed!.attempt.txHash])).toBeNull();
    expect(await nonceOf(o.fromAddress)).toBe(0n);

    const hotBefore = await eth(h.keys.hot.address);
    const resent = rec.resend(o);
    expect(resent.attempts).toHaveLength(1);
    const run = track(h.executor().execute(resent, rec.context(stop.signal)));
    const f = await rec.waitFinal(o.orderId, { mine: anvil });
    await run;
    expect(rec.statuses(o.orderId)).toEqual(["SIGNED", "BROADCAST", "CONFIRMED"]);
    expect(f.attempt.txHash).toBe(signed!.attempt.txHash);
    expect(await nonceOf(o.fromAddress)).toBe(1n);
    expect((await eth(h.keys.hot.address)) - hotBefore).toBe(Transaction.from(signed!.attempt.rawTx).value);
  });

  it("stopped after broadcast, before the BROADCAST report: the restart finds it mined (nonce too low) and confirms that hash", async () => {
    const o = await fundedSweep(12);
    const rec = createRecorder();
    rec.failNext("BROADCAST", { record: false });
    await expect(h.executor().execute(o, rec.context(stop.signal))).rejects.toThrow(/injected/);
    const [signed] = rec.reports;
    expect(rec.statuses(o.orderId)).toEqual(["SIGNED"]);
    // Automine: it is already in a block, so sending it again is refused ("nonce too low").
    expect(await nonceOf(o.fromAddress)).toBe(1n);

    const run = track(h.executor().execute(rec.resend(o), rec.context(stop.signal)));
    const f = await rec.waitFinal(o.orderId, { mine: anvil });
    await run;
    expect(rec.statuses(o.orderId)).toEqual(["SIGNED", "BROADCAST", "CONFIRMED"]);
    expect(f.attempt.txHash).toBe(signed!.attempt.txHash);
    expect(await nonceOf(o.fromAddress)).toBe(1n);
  });

  it("two orders at once from the hot wallet take distinct nonces and both land", async () => {
    const rec = createRecorder();
    const to = [Wallet.createRandom().address, Wallet.createRandom().address, Wallet.createRandom().address];
    const start = await nonceOf(h.keys.hot.address);
    const orders = to.map((t, i) => order({ kind: "REFUND", fromAddress: h.keys.hot.address, toAddress: t, amount: parseEther("0.1") + BigInt(i) }));
    const ex = h.executor();
    const all = orders.map((o) => track(ex.execute(o, rec.context(stop.signal))));
    for (const o of orders) expect((await rec.waitFinal(o.orderId, { mine: anvil })).attempt.status).toBe("CONFIRMED");
    await Promise.all(all);
    const nonces = rec.reports.filter((r) => r.attempt.status === "SIGNED").map((r) => r.attempt.nonce);
    expect(new Set(nonces).size).toBe(3);
    expect([...nonces].sort()).toEqual([start, start + 1n, start + 2n]);
    for (const [i, t] of to.entries()) expect(await eth(t)).toBe(parseEther("0.1") + BigInt(i));
    expect(await nonceOf(h.keys.hot.address)).toBe(start + 3n);
  });

  it("replaces a transfer stuck by a fee spike (same nonce, fees +12.5 % or more); exactly one lands", async () => {
    await anvil.rpc("evm_setAutomine", [false]);
    const rec = createRecorder();
    const to = Wallet.createRandom().address;
    const start = await nonceOf(h.keys.hot.address);
    const o = order({ kind: "REFUND", fromAddress: h.keys.hot.address, toAddress: to, amount: parseEther("0.25") });
    const run = track(h.executor().execute(o, rec.context(stop.signal)));
    await eventually(() => rec.statuses(o.orderId).includes("BROADCAST"));
    const first = Transaction.from(rec.reports[0]!.attempt.rawTx);
    // The base fee jumps far above what the transaction offers: no block will take it.
    await anvil.rpc("anvil_setNextBlockBaseFeePerGas", [`0x${(first.maxFeePerGas! * 20n).toString(16)}`]);
    const f = await rec.waitFinal(o.orderId, { mine: anvil, timeout: 20_000 });
    await run;
    const signed = rec.reports.filter((r) => r.attempt.status === "SIGNED");
    expect(signed.length).toBeGreaterThanOrEqual(2);
    const second = Transaction.from(signed[1]!.attempt.rawTx);
    expect(second.nonce).toBe(first.nonce);
    expect(second.maxFeePerGas! * 1000n).toBeGreaterThanOrEqual(first.maxFeePerGas! * 1125n);
    expect(second.maxPriorityFeePerGas! * 1000n).toBeGreaterThanOrEqual(first.maxPriorityFeePerGas! * 1125n);
    expect(f.attempt.status).toBe("CONFIRMED");
    expect(f.attempt.attempt).toBeGreaterThanOrEqual(2);
    expect(signed.map((s) => s.attempt.txHash)).toContain(f.attempt.txHash);
    expect(await anvil.provider.getTransactionReceipt(rec.reports[0]!.attempt.txHash)).toBeNull();
    expect(await eth(to)).toBe(parseEther("0.25"));
    expect(await nonceOf(h.keys.hot.address)).toBe(start + 1n);
  });

  it("reports a reverted transfer FAILED (reason reverted) at finality, never CONFIRMED", async () => {
    const i = 13;
    const from = deposit(i);
    const owner = agentWallet(`m/44'/60'/0'/0/${i}`, anvil.provider);
    const thief = anvil.wallet(2);
    await mined(token.getFunction("mint")(from, 9_000_000n));
    await mined(anvil.wallet(0).sendTransaction({ to: from, value: parseEther("0.1") }));
    // The owner lets another account move its tokens: that account will drain them first.
    await mined((token.connect(owner) as Contract).getFunction("approve")(thief.address, 9_000_000n));
    await anvil.rpc("evm_setAutomine", [false]);
    const rec = createRecorder();
    const o = order({ kind: "SWEEP", fromAddress: from, fromDerivationIndex: i, toAddress: h.keys.hot.address, contract: usdt.contract, amount: 9_000_000n });
    const run = track(h.executor().execute(o, rec.context(stop.signal)));
    await eventually(() => rec.statuses(o.orderId).includes("BROADCAST"));
    const sweepTx = Transaction.from(rec.reports[0]!.attempt.rawTx);
    // Ordered before the sweep in the same block by its higher tip (a gas limit given: anvil
    // estimates on the pending state, where the sweep already took the tokens).
    await (token.connect(thief) as Contract).getFunction("transferFrom")(from, thief.address, 9_000_000n, {
      gasLimit: 100_000n,
      maxFeePerGas: sweepTx.maxFeePerGas! * 3n,
      maxPriorityFeePerGas: sweepTx.maxPriorityFeePerGas! * 3n,
    });
    const f = await rec.waitFinal(o.orderId, { mine: anvil });
    await run;
    expect(f.attempt.status).toBe("FAILED");
    expect(f.reason).toBe("reverted");
    expect(f.attempt.txHash).toBe(sweepTx.hash);
    expect(f.attempt.fee).toBeGreaterThan(0n);
    expect(rec.statuses(o.orderId)).not.toContain("CONFIRMED");
    expect((await anvil.provider.getTransactionReceipt(sweepTx.hash!))!.status).toBe(0);
    expect(await usdtOf(h.keys.hot.address)).toBe(0n);
  });

  it("fails an order at finality when another transaction took its nonce", async () => {
    const o = await fundedSweep(14);
    const rec = createRecorder();
    rec.failNext("SIGNED", { record: true });
    await expect(h.executor().execute(o, rec.context(stop.signal))).rejects.toThrow(/injected/);
    // Someone with the key spends nonce 0 first (an operator by hand, say).
    const owner = agentWallet(`m/44'/60'/0'/0/14`, anvil.provider);
    await mined(owner.sendTransaction({ to: Wallet.createRandom().address, value: parseEther("0.5"), nonce: 0 }));
    const run = track(h.executor().execute(rec.resend(o), rec.context(stop.signal)));
    const f = await rec.waitFinal(o.orderId, { mine: anvil });
    await run;
    expect(f.attempt.status).toBe("FAILED");
    expect(f.reason).toMatch(/nonce 0 was used by another transaction/);
    expect(await nonceOf(o.fromAddress)).toBe(1n);
  });

  it("does not start a sweep before its gas top-up is CONFIRMED", async () => {
    const i = 15;
    const from = deposit(i);
    await mined(token.getFunction("mint")(from, 3_000_000n));
    const rec = createRecorder();
    const ac = new AbortController();
    const ex = h.executor();
    const runner = createTransferRunner({ logger: silentLogger() }, {
      network: "anvil",
      executor: ex,
      signal: ac.signal,
      report: (r) => rec.context(stop.signal).report(r),
    });
    const topup = order({ kind: "GAS_TOPUP", fromAddress: h.keys.hot.address, toAddress: from, contract: usdt.contract, amount: 0n });
    const sweep = order({ kind: "SWEEP", fromAddress: from, fromDerivationIndex: i, toAddress: h.keys.hot.address, contract: usdt.contract, amount: 3_000_000n, dependsOn: topup.orderId });
    try {
      runner.submit(topup);
      await eventually(() => rec.statuses(topup.orderId).includes("BROADCAST"));
      // Mined (automine) but not final: the sweep arrives and must wait.
      runner.submit(sweep);
      runner.submit(sweep);
      // submit decides at once: only the top-up's follow-up runs; the sweep is parked, not started.
      expect(runner.running).toBe(1);
      expect(rec.statuses(sweep.orderId)).toEqual([]);
      expect(await nonceOf(from)).toBe(0n);
      expect(runner.statusOf(topup.orderId)).toBe("BROADCAST");
      const f = await rec.waitFinal(sweep.orderId, { mine: anvil });
      expect(f.attempt.status).toBe("CONFIRMED");
      const topupFinal = rec.reports.findIndex((r) => r.orderId === topup.orderId && r.attempt.status === "CONFIRMED");
      const sweepFirst = rec.reports.findIndex((r) => r.orderId === sweep.orderId);
      expect(topupFinal).toBeGreaterThanOrEqual(0);
      expect(sweepFirst).toBeGreaterThan(topupFinal);
      expect(await usdtOf(from)).toBe(0n);
      expect(rec.statuses(sweep.orderId).filter((s) => s === "SIGNED")).toHaveLength(1);
    } finally {
      ac.abort();
      await runner.drain();
    }
  });
});
