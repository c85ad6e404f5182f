import { Wallet, parseEther, type Contract } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployRejecter, deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { startRpcProxy } from "@ponte/common/testing";
import { silentLogger, testRpc } from "../_test/rpc.js";
import { staticWatch } from "../_test/watch.js";
import { createLogFetcher } from "../logs/index.js";
import { METHOD_NOT_FOUND } from "../rpc/index.js";
import { createBlockProcessor } from "./index.js";

let anvil: Anvil;
let usdt: Contract;
let fake: Contract;
let usdtAddr: string;
let rejecter: string;
const native = Wallet.createRandom().address;
const tokenDest = Wallet.createRandom().address;
const unwatched = Wallet.createRandom().address;
let from: bigint;
let to: bigint;
const sent: Record<string, string> = {};

beforeAll(async () => {
  anvil = await startAnvil();
  const w = anvil.wallet(0);
  usdt = await deployToken(w, "USDT", 6);
  fake = await deployToken(w, "USDT", 6); // the look-alike: same symbol, another contract
  usdtAddr = await usdt.getAddress();
  rejecter = await deployRejecter(w);
  await mined(usdt.getFunction("mint")(w.address, 1_000_000_000n));
  await mined(fake.getFunction("mint")(w.address, 1_000_000_000n));
  from = (await anvil.height()) + 1n;
  // Several transactions per block, as on a real chain.
  await anvil.rpc("evm_setAutomine", [false]);
  let nonce = await anvil.provider.getTransactionCount(w.address, "pending");
  const send = async (key: string, p: Promise<{ hash: string }>) => {
    sent[key] = (await p).hash.toLowerCase();
  };
  await send("native", w.sendTransaction({ to: native, value: parseEther("1.5"), nonce: nonce++ }));
  await send("token", usdt.getFunction("transfer")(tokenDest, 25_000_000n, { nonce: nonce++ }));
  await send("lookalike", fake.getFunction("transfer")(tokenDest, 99_000_000n, { nonce: nonce++ }));
  await send("unwatched", w.sendTransaction({ to: unwatched, value: parseEther("2"), nonce: nonce++ }));
  await anvil.mine();
  // A payment to a watched contract that reverts, and a token transfer that reverts (no allowance).
  await send("reverted", w.sendTransaction({ to: rejecter, value: parseEther("3"), gasLimit: 100_000n, nonce: nonce++ }));
  await send("revertedToken", usdt.getFunction("transferFrom")(anvil.wallet(1).address, tokenDest, 5n, { gasLimit: 100_000n, nonce: nonce++ }));
  await send("token2", usdt.getFunction("transfer")(tokenDest, 1n, { nonce: nonce++ }));
  await anvil.mine();
  await anvil.mine();
  await anvil.rpc("evm_setAutomine", [true]);
  to = await anvil.height();
}, 60_000);
afterAll(async () => anvil?.stop());

const watch = () =>
  staticWatch([
    { address: native },
    { address: tokenDest, contract: usdtAddr },
    { address: rejecter },
  ]);

async function processWith(url: string, byHash: boolean) {
  const { rpc } = testRpc(url);
  const logger = silentLogger();
  const logs = createLogFetcher({ logger }, { rpc, contracts: [usdtAddr], maxRange: 1_000, network: "anvil" });
  const p = createBlockProcessor({ logger }, { rpc, logs, tokens: [{ symbol: "USDT", contract: usdtAddr, decimals: 6 }], watch: watch(), network: "anvil" });
  return p.process(from, to, { byHash });
}

describe("block processor", () => {
  it.each([false, true])("finds native and token deposits, ignoring reverted, unwatched and look-alike transfers (logs by hash: %s)", async (byHash) => {
    const receipts = await Promise.all(Object.entries(sent).map(async ([k, h]) => [k, await anvil.provider.getTransactionReceipt(h)] as const));
    const status = Object.fromEntries(receipts.map(([k, r]) => [k, r?.status]));
    expect(status).toMatchObject({ native: 1, token: 1, lookalike: 1, unwatched: 1, reverted: 0, revertedToken: 0, token2: 1 });

    const blocks = await processWith(anvil.http, byHash);
    expect(blocks.map((b) => b.height)).toEqual([from, from + 1n, from + 2n]);
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.parentHash).toBe(blocks[i - 1]!.hash);
    const deposits = blocks.flatMap((b) => b.deposits.map((d) => ({ ...d, height: b.height })));
    const tokenLog = receipts.find(([k]) => k === "token")![1]!.logs[0]!;
    const token2Log = receipts.find(([k]) => k === "token2")![1]!.logs[0]!;
    expect(deposits).toEqual([
      { txRef: `${sent.native}:native`, txHash: sent.native, address: native, contract: null, amount: 1_500_000_000_000_000_000n, from: anvil.wallet(0).address, height: from },
      { txRef: `${sent.token}:${tokenLog.index}`, txHash: sent.token, address: tokenDest, contract: usdtAddr.toLowerCase(), amount: 25_000_000n, from: anvil.wallet(0).address, height: from },
      { txRef: `${sent.token2}:${token2Log.index}`, txHash: sent.token2, address: tokenDest, contract: usdtAddr.toLowerCase(), amount: 1n, from: anvil.wallet(0).address, height: from + 1n },
    ]);
  });

  it("reads receipts one by one when the node has no eth_getBlockReceipts", async () => {
    const proxy = await startRpcProxy(anvil.http, {
      intercept: (r) => (r.method === "eth_getBlockReceipts" ? { error: { code: METHOD_NOT_FOUND, message: "Method not found" } } : undefined),
    });
    try {
      const blocks = await processWith(proxy.url, false);
      expect(blocks.flatMap((b) => b.deposits).map((d) => d.txHash)).toEqual([sent.native, sent.token, sent.token2]);
      const methods = proxy.seen.map((r) => r.method);
      expect(methods).toContain("eth_getTransactionReceipt");
      // Receipts only for blocks with a native candidate: the reverted payment and the native one.
      expect(methods.filter((m) => m === "eth_getTransactionReceipt")).toHaveLength(2);
    } finally {
      await proxy.stop();
    }
  });
  it("at the head reads the block, its logs and its receipts in one request, by the announced hash", async () => {
    let requests = 0;
    const proxy = await startRpcProxy(anvil.http, { failHttp: () => void requests++ });
    try {
      const { rpc } = testRpc(proxy.url);
      const logger = silentLogger();
      const logs = createLogFetcher({ logger }, { rpc, contracts: [usdtAddr], maxRange: 1_000, network: "anvil" });
      const p = createBlockProcessor({ logger }, { rpc, logs, tokens: [{ symbol: "USDT", contract: usdtAddr, decimals: 6 }], watch: watch(), network: "anvil" });
      const found: string[] = [];
      for (let h = from; h <= to; h++) {
        const b = (await anvil.provider.getBlock(Number(h)))!;
        const tip = { height: h, hash: b.hash!.toLowerCase(), parentHash: b.parentHash.toLowerCase(), time: BigInt(b.timestamp) };
        const before = requests;
        const [block] = await p.process(h, h, { byHash: true, tip });
        expect(requests - before).toBe(1);
        expect(block!.hash).toBe(tip.hash);
        found.push(...block!.deposits.map((d) => d.txHash));
      }
      // The same deposits as by number: the reverted payment's receipt is still checked.
      expect(found).toEqual([sent.native, sent.token, sent.token2]);
      expect(proxy.seen.filter((r) => r.method === "eth_getBlockByNumber")).toHaveLength(0);
    } finally {
      await proxy.stop();
    }
  });
});
