// The executor against litecoind regtest with an in-test recorder standing where the
// coordinator's ReportTransfer is (as in agents/evm): the kinds the coordinator workflows do not
// reach in the other tests (CUSTODIAL_SELL, REBALANCE) and the guards.
import type { TransferOrder, TransferReport, TransferRunContext, TransferStatus } from "@ponte/agent-runtime";
import { loadSeed } from "@ponte/agent-runtime/keys";
import { createLogger } from "@ponte/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MNEMONIC, regtestConfig } from "../_test/agent.js";
import { closeLitecoind, RPC_PASSWORD, RPC_USER, startLitecoind, type Litecoind } from "../_test/litecoind.js";
import { createUtxoKeys, type UtxoKeys } from "../keys/index.js";
import { coinsToSats, createUtxoRpc } from "../rpc/index.js";
import { createUtxoTransferExecutor, type UtxoTransferExecutor } from "./index.js";

let node: Litecoind;
let keys: UtxoKeys;
let cold: string;
let exec: UtxoTransferExecutor;
const stop = new AbortController();
const logger = createLogger({ name: "executor-test", level: process.env.PONTE_TEST_LOG ?? "silent" });

beforeAll(async () => {
  node = await startLitecoind();
  cold = await node.wallet<string>("getnewaddress", ["", "bech32"]);
  const config = regtestConfig(node, { coldWallet: cold, confirmations: 1, pollIntervalMs: 50, dustLimit: 5_000n });
  const seed = await loadSeed({ source: "env", variable: "(test)", value: AGENT_MNEMONIC }, logger);
  keys = await createUtxoKeys(seed, config.chain);
  const rpc = createUtxoRpc({ url: node.url, auth: { kind: "password", user: RPC_USER, password: RPC_PASSWORD }, timeoutMs: 5_000, maxInFlight: 4, batchSize: 10, logger });
  exec = createUtxoTransferExecutor({ logger }, { config, rpc, keys });
}, 60_000);
afterAll(async () => {
  stop.abort();
  await closeLitecoind(node);
});

function recorder() {
  const reports: TransferReport[] = [];
  const ctx: TransferRunContext = {
    signal: stop.signal,
    statusOf: () => undefined,
    async report(r) {
      reports.push(r);
    },
  };
  return { reports, ctx, statuses: () => reports.map((r) => r.attempt.status as TransferStatus) };
}

const order = (o: Partial<TransferOrder>): TransferOrder => ({
  orderId: `order-${Math.random().toString(36).slice(2)}`,
  kind: "SWEEP",
  tradeId: null,
  fromAddress: keys.hot.address,
  fromDerivationIndex: 0,
  toAddress: keys.hot.address,
  contract: null,
  amount: 0n,
  deductFee: true,
  sourceTxRefs: [],
  attempts: [],
  dependsOn: null,
  status: "PENDING",
  maxFee: null,
  ...o,
});

/** Runs an order to its end while blocks are mined. */
async function execute(o: TransferOrder) {
  const r = recorder();
  let done = false;
  const run = exec.execute(o, r.ctx).finally(() => (done = true));
  while (!done) {
    await new Promise((res) => setTimeout(res, 100));
    if (!done) await node.mine(1);
  }
  await run;
  return r;
}

const received = async (txid: string, address: string) => {
  const tx = await node.rpc<{ vout: { value: number; scriptPubKey: { addresses?: string[]; address?: string } }[] }>("getrawtransaction", [txid, true]);
  return tx.vout.filter((v) => (v.scriptPubKey.addresses ?? [v.scriptPubKey.address]).includes(address)).reduce((s, v) => s + coinsToSats(v.value), 0n);
};

describe("UTXO transfer executor", () => {
  it("CUSTODIAL_SELL: a user's custodial address (no source refs) to the hot wallet, fee deducted", async () => {
    const user = keys.deriver.derive(40).address;
    await node.pay({ [user]: 3_000_000n });
    await node.pay({ [user]: 2_000_000n });
    await node.mine(1);
    const r = await execute(order({ kind: "CUSTODIAL_SELL", fromAddress: user, fromDerivationIndex: 40, amount: 5_000_000n }));
    expect(r.statuses()).toEqual(["SIGNED", "BROADCAST", "CONFIRMED"]);
    const a = r.reports.at(-1)!.attempt;
    expect(await received(a.txHash, keys.hot.address)).toBe(5_000_000n - a.fee);
  }, 30_000);

  it("REBALANCE: hot wallet coins to the cold wallet, the change back to the hot wallet", async () => {
    await node.pay({ [keys.hot.address]: 40_000_000n });
    await node.pay({ [keys.hot.address]: 30_000_000n });
    await node.mine(1);
    const r = await execute(order({ kind: "REBALANCE", toAddress: cold, amount: 50_000_000n, deductFee: false }));
    expect(r.statuses()).toEqual(["SIGNED", "BROADCAST", "CONFIRMED"]);
    const a = r.reports.at(-1)!.attempt;
    expect(await received(a.txHash, cold)).toBe(50_000_000n);
    const tx = await node.rpc<{ vin: unknown[] }>("getrawtransaction", [a.txHash, true]);
    const inputs = tx.vin.length;
    // Largest first: the 0.4 LTC coin and the 0.3 one (0.05 from the custodial sell may be there too).
    expect(inputs).toBeGreaterThanOrEqual(2);
    const change = await received(a.txHash, keys.hot.address);
    expect(change).toBeGreaterThan(0n);
  }, 30_000);

  it("refuses what the kinds do not allow, without a transaction", async () => {
    const user = keys.deriver.derive(41).address;
    const other = await node.wallet<string>("getnewaddress", ["", "bech32"]);
    const cases: [Partial<TransferOrder>, RegExp][] = [
      [{ kind: "SWEEP", fromAddress: user, fromDerivationIndex: 41, toAddress: other, amount: 1n }, /goes to the hot wallet/],
      [{ kind: "REBALANCE", toAddress: other, amount: 1n }, /goes to the cold wallet/],
      [{ kind: "GAS_TOPUP", toAddress: user }, /needs no gas top-up/],
      [{ kind: "REFUND", toAddress: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", amount: 1n }, /is not a litecoin-regtest address/],
      [{ kind: "SWEEP", fromAddress: user, fromDerivationIndex: 7 }, /not derivable from this agent's seed/],
      [{ kind: "SWEEP", fromAddress: user, fromDerivationIndex: 41, sourceTxRefs: [`${"00".repeat(32)}:0`], amount: 1n }, /is spent or unknown/],
    ];
    for (const [o, reason] of cases) {
      const r = await execute(order(o));
      expect(r.reports).toHaveLength(1);
      expect(r.reports[0]).toMatchObject({ attempt: { status: "FAILED", txHash: "" } });
      expect(r.reports[0]!.reason).toMatch(reason);
    }
  }, 30_000);

  it("skips a sweep whose fee would exceed max_fee, and one that would leave dust", async () => {
    const user = keys.deriver.derive(42).address;
    const big = keys.deriver.derive(43).address;
    const txid = await node.pay({ [user]: 6_000n, [big]: 100_000n });
    await node.mine(1);
    const tx = await node.rpc<{ vout: { n: number; value: number }[] }>("getrawtransaction", [txid, true]);
    const vout = (sats: bigint) => tx.vout.find((v) => coinsToSats(v.value) === sats)!.n;
    // 6,000 sat less a 1,100 sat fee (10 sat/vB × 110 vB) leaves 4,900: below the dust limit (5,000 here).
    const dust = await execute(order({ kind: "SWEEP", fromAddress: user, fromDerivationIndex: 42, sourceTxRefs: [`${txid}:${vout(6_000n)}`], amount: 6_000n }));
    expect(dust.reports[0]).toMatchObject({ attempt: { status: "SKIPPED" } });
    expect(dust.reports[0]!.reason).toMatch(/below the dust limit/);
    const capped = await execute(order({ kind: "SWEEP", fromAddress: big, fromDerivationIndex: 43, sourceTxRefs: [`${txid}:${vout(100_000n)}`], amount: 100_000n, maxFee: 1_000n }));
    expect(capped.reports[0]).toMatchObject({ attempt: { status: "SKIPPED" } });
    expect(capped.reports[0]!.reason).toMatch(/exceeds max_fee \(1000 sat\)/);
    // Nothing moved.
    expect(await node.rpc("gettxout", [txid, vout(100_000n), true])).not.toBeNull();
  }, 30_000);
});
