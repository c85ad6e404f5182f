import { Wallet, type Contract } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployToken, mined, startAnvil, type Anvil } from "../_test/anvil.js";
import { startRpcProxy } from "@ponte/common/testing";
import { silentLogger, testRpc } from "../_test/rpc.js";
import { createLogFetcher } from "./index.js";

let anvil: Anvil;
let token: Contract;
let tokenAddr: string;
let first: bigint;
let last: bigint;
const dest = Wallet.createRandom().address;

beforeAll(async () => {
  anvil = await startAnvil();
  token = await deployToken(anvil.wallet(0));
  tokenAddr = await token.getAddress();
  await mined(token.getFunction("mint")(anvil.wallet(0).address, 10n ** 12n));
  first = (await anvil.height()) + 1n;
  // 30 transfers spread over ~90 blocks.
  for (let i = 0; i < 30; i++) {
    await mined(token.getFunction("transfer")(dest, BigInt(i + 1)));
    await anvil.mine(2);
  }
  last = await anvil.height();
}, 60_000);
afterAll(async () => anvil?.stop());

const hexToBig = (v: unknown) => BigInt(v as string);

describe("eth_getLogs range chunking", () => {
  it("shrinks the range when the provider refuses it, finds every log, and grows back", async () => {
    const LIMIT = 10n;
    const proxy = await startRpcProxy(anvil.http, {
      intercept: (r) => {
        if (r.method !== "eth_getLogs") return undefined;
        const f = r.params[0] as { fromBlock?: string; toBlock?: string };
        if (f.fromBlock && f.toBlock && hexToBig(f.toBlock) - hexToBig(f.fromBlock) + 1n > LIMIT) {
          return { error: { code: -32005, message: `block range is too wide (max ${LIMIT})` } };
        }
        return undefined;
      },
    });
    try {
      const { rpc } = testRpc(proxy.url);
      const logs = createLogFetcher({ logger: silentLogger() }, { rpc, contracts: [tokenAddr], maxRange: 100, network: "anvil" });
      const found = await logs.byRange(first, last);
      expect(found.map((l) => BigInt(l.data))).toEqual(Array.from({ length: 30 }, (_, i) => BigInt(i + 1)));
      const ranges = proxy.seen
        .filter((r) => r.method === "eth_getLogs")
        .map((r) => {
          const f = r.params[0] as { fromBlock: string; toBlock: string };
          return Number(hexToBig(f.toBlock) - hexToBig(f.fromBlock) + 1n);
        });
      // The whole span (90 blocks) → 45 → 22 → 11 refused, then 5 accepted.
      const span = Number(last - first + 1n);
      expect(span).toBe(90);
      expect(ranges.slice(0, 5)).toEqual([90, 45, 22, 11, 5]);
      expect(Math.max(...ranges.slice(4))).toBeLessThanOrEqual(10);
      expect(logs.range).toBeLessThanOrEqual(10);
      // After a run of successes the fetcher tries a wider range again (and is refused again).
      expect(ranges.slice(4)).toContain(10);
    } finally {
      await proxy.stop();
    }
  });

  it("rethrows an error on a single block: that is not a range problem", async () => {
    const proxy = await startRpcProxy(anvil.http, {
      intercept: (r) => (r.method === "eth_getLogs" ? { error: { code: -32000, message: "internal error" } } : undefined),
    });
    try {
      const { rpc } = testRpc(proxy.url);
      const logs = createLogFetcher({ logger: silentLogger() }, { rpc, contracts: [tokenAddr], maxRange: 4, network: "anvil" });
      await expect(logs.byRange(first, first + 3n)).rejects.toMatchObject({ name: "RpcError", code: -32000 });
      expect(proxy.seen.filter((r) => r.method === "eth_getLogs")).toHaveLength(3); // 4, 2, 1
    } finally {
      await proxy.stop();
    }
  });

  it("reads logs by block hash", async () => {
    const { rpc } = testRpc(anvil.http);
    const logs = createLogFetcher({ logger: silentLogger() }, { rpc, contracts: [tokenAddr], maxRange: 100, network: "anvil" });
    const b = await anvil.provider.getBlock(Number(first));
    const [l] = await logs.byBlockHash([b!.hash!]);
    expect(l!.map((x) => BigInt(x.data))).toEqual([1n]);
  });
});
