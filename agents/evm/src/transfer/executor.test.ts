// The executor against anvil with an in-test recorder standing where the coordinator's
// ReportTransfer is: the order kinds, their reporting sequences, and the guards.
import type { Contract } from "ethers";
import { parseEther, Transaction, Wallet } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { createRecorder, order, transferHarness, type Harness } from "../_test/transfer.js";
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
  await mined(token.getFunction("mint")(h.keys.hot.address, 1_000_000_000n));
  snapshot = await anvil.rpc<string>("evm_snapshot");
});
afterEach(async () => {
  stop.abort();
  await Promise.allSettled(runs.splice(0));
  stop = new AbortController();
  await anvil.rpc("evm_revert", [snapshot]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
});
afterAll(async () => {
  h?.stop();
  await anvil?.stop();
});

const deposit = (i: number) => h.keys.deriver.derive(i).address;
const eth = (a: string) => anvil.provider.getBalance(a);
const usdtOf = async (a: string) => (await token.getFunction("balanceOf")(a)) as bigint;
const nonceOf = async (a: string) => BigInt(await anvil.rpc<string>("eth_getTransactionCount", [a, "latest"]));

describe("transfer executor", () => {
  it("sweeps native with the fee deducted: SIGNED before broadcast, BROADCAST, CONFIRMED only at finality", async () => {
    const from = deposit(3);
    await mined(anvil.wallet(0).sendTransaction({ to: from, value: parseEther("1") }));
    const rec = createRecorder();
    const ctx = rec.context(stop.signal);
    const seenAtSigned: unknown[] = [];
    // The recorder answers SIGNED only once it checked the node has not seen the transaction.
    const report = ctx.report;
    ctx.report = async (r) => {
      if (r.attempt.status === "SIGNED") seenAtSigned.push(await anvil.rpc("eth_getTransactionByHash", [r.attempt.txHash]));
      await report(r);
    };
    const o = order({ kind: "SWEEP", fromAddress: from, fromDerivationIndex: 3, toAddress: h.keys.hot.address, amount: parseEther("1"), deductFee: true });
    const hotBefore = await eth(h.keys.hot.address);
    const run = track(h.executor().execute(o, ctx));
    await rec.waitFinal(o.orderId, { mine: anvil }).catch(() => undefined);
    await run;
    expect(rec.statuses(o.orderId)).toEqual(["SIGNED", "BROADCAST", "CONFIRMED"]);
    expect(seenAtSigned).toEqual([null]);
    const [signed, , confirmed] = rec.reports;
    expect(signed!.attempt).toMatchObject({ attempt: 1, nonce: 0n });
    expect(Transaction.from(signed!.attempt.rawTx).hash).toBe(signed!.attempt.txHash);
    expect(confirmed!.attempt.txHash).toBe(signed!.attempt.txHash);
    const receipt = (await anvil.provider.getTransactionReceipt(signed!.attempt.txHash))!;
    expect(confirmed!.blockHeight).toBe(BigInt(receipt.blockNumber));
    expect((await anvil.height()) - confirmed!.blockHeight!).toBeGreaterThanOrEqual(2n);
    expect(confirmed!.attempt.fee).toBe(receipt.gasUsed * receipt.gasPrice);
    // value = amount - gasLimit × maxFeePerGas: the address keeps the unspent part of the fee budget.
    const tx = Transaction.from(signed!.attempt.rawTx);
    expect(tx.value).toBe(parseEther("1") - tx.gasLimit * tx.maxFeePerGas!);
    expect(signed!.attempt.fee).toBe(tx.gasLimit * tx.maxFeePerGas!);
    expect((await eth(h.keys.hot.address)) - hotBefore).toBe(tx.value);
  });

  it("sweeps a token to the hot wallet with ERC-20 transfer()", async () => {
    const from = deposit(4);
    await mined(token.getFunction("mint")(from, 5_000_000n));
    await mined(anvil.wallet(0).sendTransaction({ to: from, value: parseEther("0.01") }));
    const rec = createRecorder();
    const o = order({ kind: "SWEEP", fromAddress: from, fromDerivationIndex: 4, toAddress: h.keys.hot.address, contract: usdt.contract, amount: 5_000_000n });
    const before = await usdtOf(h.keys.hot.address);
    const run = track(h.executor().execute(o, rec.context(stop.signal)));
    expect((await rec.waitFinal(o.orderId, { mine: anvil })).attempt.status).toBe("CONFIRMED");
    await run;
    expect((await usdtOf(h.keys.hot.address)) - before).toBe(5_000_000n);
    expect(await usdtOf(from)).toBe(0n);
    const tx = Transaction.from(rec.reports[0]!.attempt.rawTx);
    expect(tx.to).toBe(usdt.contract);
    expect(tx.gasLimit).toBeGreaterThanOrEqual(65_000n);
  });

  it("refunds from the hot wallet, and refuses an order whose from_address is not derivable from the seed", async () => {
    const rec = createRecorder();
    const refundTo = Wallet.createRandom().address;
    const ok = order({ kind: "REFUND", fromAddress: h.keys.hot.address, fromDerivationIndex: 999, toAddress: refundTo, amount: parseEther("0.5") });
    const run = track(h.executor().execute(ok, rec.context(stop.signal)));
    expect((await rec.waitFinal(ok.orderId, { mine: anvil })).attempt.status).toBe("CONFIRMED");
    await run;
    expect(await eth(refundTo)).toBe(parseEther("0.5"));

    const stranger = Wallet.createRandom().address;
    const wrongIndex = order({ kind: "SWEEP", fromAddress: deposit(7), fromDerivationIndex: 8, toAddress: h.keys.hot.address, amount: 1n });
    const foreign = order({ kind: "REFUND", fromAddress: stranger, fromDerivationIndex: 0, toAddress: refundTo, amount: 1n });
    for (const o of [wrongIndex, foreign]) {
      await h.executor().execute(o, rec.context(stop.signal));
      const f = rec.final(o.orderId)!;
      expect(f.attempt).toEqual({ attempt: 0, txHash: "", rawTx: "", nonce: null, fee: 0n, status: "FAILED" });
      expect(f.reason).toMatch(/not derivable from this agent's seed/);
    }
  });

  it("keeps funds on their paths: a sweep goes to the hot wallet only, a rebalance needs the cold wallet", async () => {
    const rec = createRecorder();
    const thief = Wallet.createRandom().address;
    const sweep = order({ kind: "SWEEP", fromAddress: deposit(1), fromDerivationIndex: 1, toAddress: thief, amount: 1n });
    const rebalance = order({ kind: "REBALANCE", fromAddress: h.keys.hot.address, toAddress: thief, amount: 1n });
    for (const o of [sweep, rebalance]) await h.executor().execute(o, rec.context(stop.signal));
    expect(rec.final(sweep.orderId)!.reason).toMatch(/goes to the hot wallet/);
    expect(rec.final(rebalance.orderId)!.reason).toMatch(/no cold_wallet/);
    expect(rec.reports.every((r) => r.attempt.status === "FAILED" && r.attempt.txHash === "")).toBe(true);
  });

  it("skips a sweep whose fee is above max_fee, sending nothing", async () => {
    const from = deposit(5);
    await mined(anvil.wallet(0).sendTransaction({ to: from, value: parseEther("1") }));
    const rec = createRecorder();
    const o = order({ kind: "SWEEP", fromAddress: from, fromDerivationIndex: 5, toAddress: h.keys.hot.address, amount: parseEther("1"), deductFee: true, maxFee: 1_000n });
    await h.executor().execute(o, rec.context(stop.signal));
    expect(rec.statuses(o.orderId)).toEqual(["SKIPPED"]);
    expect(rec.final(o.orderId)!.reason).toMatch(/exceeds max_fee \(1000 wei\)/);
    expect(await nonceOf(from)).toBe(0n);
    expect(await eth(from)).toBe(parseEther("1"));
  });

  it("tops up gas for a token sweep: gasLimit × maxFeePerGas less what the address holds, or nothing when it has enough", async () => {
    const to = deposit(6);
    await mined(token.getFunction("mint")(to, 7_000_000n));
    await mined(anvil.wallet(0).sendTransaction({ to, value: 1_000n }));
    const rec = createRecorder();
    const topup = order({ kind: "GAS_TOPUP", fromAddress: h.keys.hot.address, toAddress: to, contract: usdt.contract, amount: 0n });
    const run = track(h.executor().execute(topup, rec.context(stop.signal)));
    expect((await rec.waitFinal(topup.orderId, { mine: anvil })).attempt.status).toBe("CONFIRMED");
    await run;
    const tx = Transaction.from(rec.reports[0]!.attempt.rawTx);
    // The sweep's gas (65,000 floor, the test token needs less) at the fee cap's maxFeePerGas of the moment.
    const maxFee = tx.maxFeePerGas!;
    expect(tx.value).toBe(65_000n * maxFee - 1_000n);
    expect(await eth(to)).toBe(65_000n * maxFee);

    // Topped up already: CONFIRMED at once, no transaction (attempt 0, empty hash).
    const again = order({ kind: "GAS_TOPUP", fromAddress: h.keys.hot.address, toAddress: to, contract: usdt.contract, amount: 0n });
    // Fees came down meanwhile (maxFeePerGas = 2 × base fee + tip): what it holds is enough.
    await anvil.rpc("anvil_setNextBlockBaseFeePerGas", ["0x1"]);
    await h.executor().execute(again, rec.context(stop.signal));
    expect(rec.final(again.orderId)).toMatchObject({ attempt: { attempt: 0, txHash: "", rawTx: "", status: "CONFIRMED" } });
    expect(rec.final(again.orderId)!.reason).toMatch(/no top-up sent/);

    // …and the token sweep it paid for goes through with what is there.
    const sweep = order({ kind: "SWEEP", fromAddress: to, fromDerivationIndex: 6, toAddress: h.keys.hot.address, contract: usdt.contract, amount: 7_000_000n, dependsOn: topup.orderId });
    const sweepRun = track(h.executor().execute(sweep, rec.context(stop.signal)));
    expect((await rec.waitFinal(sweep.orderId, { mine: anvil })).attempt.status).toBe("CONFIRMED");
    await sweepRun;
    expect(await usdtOf(to)).toBe(0n);
  });

  it("fails a native refund that does not cover its fee, and one the hot wallet cannot pay, without a transaction", async () => {
    const rec = createRecorder();
    const from = deposit(9);
    await mined(anvil.wallet(0).sendTransaction({ to: from, value: 10_000n }));
    const dust = order({ kind: "REFUND", fromAddress: from, fromDerivationIndex: 9, toAddress: Wallet.createRandom().address, amount: 10_000n, deductFee: true });
    const tooMuch = order({ kind: "REFUND", fromAddress: h.keys.hot.address, toAddress: Wallet.createRandom().address, amount: parseEther("1000") });
    for (const o of [dust, tooMuch]) await h.executor().execute(o, rec.context(stop.signal));
    expect(rec.final(dust.orderId)!.reason).toMatch(/is not less than the amount/);
    expect(rec.final(tooMuch.orderId)!.reason).toMatch(/less than the .* to send plus the fee/);
    expect(rec.reports.map((r) => r.attempt.status)).toEqual(["FAILED", "FAILED"]);
  });
});
