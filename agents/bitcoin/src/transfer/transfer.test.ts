import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regtestConfig, startTestAgent, type TestAgent } from "../_test/agent.js";
import { attemptsOf, createTrade, deposits, ordersOf, startTestCoordinator, tradeStatus, type TestCoordinator, type Trade } from "../_test/coordinator.js";
import { closeLitecoind, startLitecoind, type Litecoind } from "../_test/litecoind.js";
import { coinsToSats } from "../rpc/index.js";

let node: Litecoind;
let tc: TestCoordinator;
let agent: TestAgent;

beforeAll(async () => {
  [node, tc] = await Promise.all([startLitecoind(), startTestCoordinator({ ADDRESS_POOL_TARGET: "8", ADDRESS_POOL_LOW_WATER: "2" })]);
  agent = await startTestAgent(tc.address, regtestConfig(node, { balanceIntervalMs: 300 }), { transfers: true });
  await eventually(async () => (await tc.sql`SELECT 1 FROM deposit_addresses WHERE status = 'AVAILABLE'`).length >= 4, { timeout: 15_000 });
}, 60_000);
afterAll(async () => {
  await agent?.stop();
  await tc?.close();
  await closeLitecoind(node);
});

/** Mines a block every 150 ms until check passes (transfers need 6 confirmations). */
async function mineUntil(check: () => Promise<unknown>, timeout = 30_000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await node.mine(1);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** What an address received in a transaction, in satoshis. */
async function paid(txid: string, address: string): Promise<{ sats: bigint; inputs: number; outputs: number }> {
  const tx = await node.rpc<{ vin: unknown[]; vout: { value: number; scriptPubKey: { addresses?: string[]; address?: string } }[] }>("getrawtransaction", [txid, true]);
  const sats = tx.vout
    .filter((v) => (v.scriptPubKey.addresses ?? [v.scriptPubKey.address]).includes(address))
    .reduce((s, v) => s + coinsToSats(v.value), 0n);
  return { sats, inputs: tx.vin.length, outputs: tx.vout.length };
}

const watched = (t: Trade) => eventually(() => !!agent.handle.watch.get(t.address), { timeout: 5_000 });

describe("UTXO transfers on litecoind regtest (real coordinator)", () => {
  it("sweeps a trade's two deposits in one transaction to the hot wallet, paying the fee out of them", async () => {
    const t = await createTrade(tc.sql, { amount: 20_000_000n });
    await watched(t);
    await node.pay({ [t.address]: 12_000_000n });
    await node.pay({ [t.address]: 8_000_000n });
    await node.mine(6);
    await eventually(async () => expect(await tradeStatus(tc.sql, t.tradeId)).toBe("PAYMENT_CONFIRMED"), { timeout: 15_000 });
    let sweep: Awaited<ReturnType<typeof ordersOf>>[number] | undefined;
    await mineUntil(async () => {
      [sweep] = (await ordersOf(tc.sql, t.tradeId)).filter((o) => o.kind === "SWEEP");
      expect(sweep?.status).toBe("CONFIRMED");
    });
    expect(sweep!.to_address).toBe(agent.keys.hot.address);
    const attempts = await attemptsOf(tc.sql, sweep!.id);
    expect(attempts).toHaveLength(1);
    expect(sweep!.confirmed_tx_hash).toBe(attempts[0]!.tx_hash);
    const fee = BigInt(attempts[0]!.fee!);
    const got = await paid(attempts[0]!.tx_hash, agent.keys.hot.address);
    // Both deposits in, one output to the hot wallet: 0.2 LTC minus the fee, at the fallback 10 sat/vB.
    expect(got).toEqual({ sats: 20_000_000n - fee, inputs: 2, outputs: 1 });
    expect(fee).toBeGreaterThan(0n);
    expect(fee).toBeLessThanOrEqual(10n * (11n + 2n * 68n + 31n));
    // The hot wallet's balance and the fee rate signed (the regtest fallback, 10 sat/vB) are exported.
    await eventually(async () => expect(await agent.common.metrics.metrics()).toMatch(/ponte_agent_wallet_balance\{network="litecoin-regtest",asset="LTC"[^}]*\} 0\.\d*[1-9]/), { timeout: 5_000 });
    expect(await agent.common.metrics.metrics()).toMatch(/ponte_agent_fee_rate_sat_per_vbyte\{network="litecoin-regtest",kind="signed"[^}]*\} 10\n/);
    // The deposits are spent.
    for (const d of (await deposits(tc.sql)).values()) {
      if (d.trade_id !== t.tradeId) continue;
      const [txid, vout] = d.tx_ref.split(":");
      expect(await node.rpc("gettxout", [txid, Number(vout), true])).toBeNull();
    }
  }, 60_000);

  it("refunds an underpaid trade to its refund address: the deposit minus the network fee", async () => {
    const refund = await node.wallet<string>("getnewaddress", ["", "bech32"]);
    const t = await createTrade(tc.sql, { amount: 50_000_000n, refundAddress: refund, expiresInSeconds: 2 });
    await watched(t);
    await node.pay({ [t.address]: 10_000_000n });
    await node.mine(6);
    let order: Awaited<ReturnType<typeof ordersOf>>[number] | undefined;
    await mineUntil(async () => {
      [order] = (await ordersOf(tc.sql, t.tradeId)).filter((o) => o.kind === "REFUND");
      expect(order?.status).toBe("CONFIRMED");
    }, 40_000);
    await eventually(async () => expect(await tradeStatus(tc.sql, t.tradeId)).toBe("REFUNDED"), { timeout: 10_000 });
    const [a] = await attemptsOf(tc.sql, order!.id);
    const got = await paid(a!.tx_hash, refund);
    expect(got.sats).toBe(10_000_000n - BigInt(a!.fee!));
    expect(got.inputs).toBe(1);
  }, 60_000);

  it("replaces a stuck sweep (RBF, same inputs, higher fee) and exactly one of its transactions lands", async () => {
    const t = await createTrade(tc.sql, { amount: 15_000_000n });
    await watched(t);
    await node.pay({ [t.address]: 15_000_000n });
    await node.mine(6);
    let sweepId = "";
    await eventually(
      async () => {
        const [s] = (await ordersOf(tc.sql, t.tradeId)).filter((o) => o.kind === "SWEEP");
        expect(s?.status).toBe("BROADCAST");
        sweepId = s!.id;
      },
      { timeout: 15_000 },
    );
    const [first] = await attemptsOf(tc.sql, sweepId);
    // Blocks that leave it out: after replace_after_blocks (3) the agent bumps the fee.
    const other = await node.wallet<string>("getnewaddress", ["", "bech32"]);
    const deadline = Date.now() + 20_000;
    while ((await attemptsOf(tc.sql, sweepId)).length < 2) {
      if (Date.now() > deadline) throw new Error("no replacement");
      await node.rpc("generateblock", [other, []]);
      await new Promise((r) => setTimeout(r, 200));
    }
    await mineUntil(async () => expect((await ordersOf(tc.sql, t.tradeId)).find((o) => o.kind === "SWEEP")?.status).toBe("CONFIRMED"));
    const attempts = await attemptsOf(tc.sql, sweepId);
    expect(attempts).toHaveLength(2);
    const second = attempts[1]!;
    expect(BigInt(second.fee!)).toBeGreaterThan(BigInt(first!.fee!));
    expect((await ordersOf(tc.sql, t.tradeId)).find((o) => o.kind === "SWEEP")!.confirmed_tx_hash).toBe(second.tx_hash);
    // The first one is gone for good: its input is spent by the second.
    await expect(node.rpc("getrawtransaction", [first!.tx_hash, true])).rejects.toThrow(/No such mempool or blockchain transaction/);
    expect((await paid(second.tx_hash, agent.keys.hot.address)).sats).toBe(15_000_000n - BigInt(second.fee!));
    expect(agent.logs.some((l) => l.msg === "Stuck transfer replaced with a fee bump (RBF)")).toBe(true);
  }, 60_000);
});
