import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regtestConfig, startTestAgent, timesReported, type TestAgent } from "../_test/agent.js";
import { createTrade, deposits, history, startTestCoordinator, tradeStatus, type TestCoordinator, type Trade } from "../_test/coordinator.js";
import { closeLitecoind, RPC_PASSWORD, RPC_USER, satsToCoins, startLitecoind, type Litecoind } from "../_test/litecoind.js";
import { CHAINS } from "../config/index.js";
import { createScriptReader } from "../script/index.js";
import { createUtxoRpc } from "../rpc/index.js";
import { createBlockSource } from "./blocks.js";
import { createLogger } from "@ponte/common";

// Real litecoind regtest, real coordinator (Postgres, NATS); the agent in process.
let node: Litecoind;
let tc: TestCoordinator;
let agent: TestAgent;

// One chain, one coordinator and one agent for the file: every trade takes a fresh pool address,
// so the tests do not see each other's deposits.
beforeAll(async () => {
  [node, tc] = await Promise.all([startLitecoind(), startTestCoordinator({ ADDRESS_POOL_TARGET: "12", ADDRESS_POOL_LOW_WATER: "4" })]);
  agent = await startTestAgent(tc.address, regtestConfig(node));
}, 60_000);
afterAll(async () => {
  await agent?.stop();
  await tc?.close();
  await closeLitecoind(node);
});

async function freshAgent(): Promise<TestAgent> {
  await eventually(async () => (await tc.sql`SELECT 1 FROM deposit_addresses WHERE status = 'AVAILABLE'`).length >= 8, { timeout: 15_000 });
  return agent;
}
const depositsOf = async (t: Trade) => [...(await deposits(tc.sql)).values()].filter((d) => d.trade_id === t.tradeId);

const waitStatus = (t: Trade, status: string, timeout = 15_000) =>
  eventually(async () => expect(await tradeStatus(tc.sql, t.tradeId)).toBe(status), { timeout, interval: 100 });

describe("UTXO follower on litecoind regtest", () => {
  it("takes many trades from the mempool to PAYMENT_CONFIRMED at 6 confirmations, each deposit once", async () => {
    const a = await freshAgent();
    const trades: Trade[] = [];
    for (let i = 0; i < 8; i++) trades.push(await createTrade(tc.sql, { amount: 10_000_000n + BigInt(i) }));
    await eventually(() => trades.every((t) => a.handle.watch.get(t.address)), { timeout: 5_000 });
    // One transaction pays them all: eight outputs, eight deposits "txid:vout".
    const txid = await node.pay(Object.fromEntries(trades.map((t, i) => [t.address, 10_000_000n + BigInt(i)])));
    for (const t of trades) await waitStatus(t, "DEPOSIT_DETECTED");
    const entry = await node.rpc<{ "bip125-replaceable": boolean }>("getmempoolentry", [txid]);
    let stored = await deposits(tc.sql);
    const ours = [...stored.values()].filter((d) => trades.some((t) => t.tradeId === d.trade_id));
    expect(ours).toHaveLength(8);
    for (const d of ours) {
      expect(d.block_height).toBeNull();
      expect(d.rbf_signaled).toBe(entry["bip125-replaceable"]);
      expect(d.tx_ref.startsWith(`${txid}:`)).toBe(true);
    }
    // Five confirmations are not enough for LTC (6).
    await node.mine(5);
    await eventually(async () => (await Promise.all(trades.map(depositsOf))).flat().every((d) => d.block_height !== null), { timeout: 10_000 });
    for (const t of trades) expect(await tradeStatus(tc.sql, t.tradeId)).toBe("DEPOSIT_DETECTED");
    await node.mine(1);
    for (const t of trades) await waitStatus(t, "PAYMENT_CONFIRMED");
    stored = await deposits(tc.sql);
    for (const [i, t] of trades.entries()) {
      const mine = [...stored.values()].filter((d) => d.trade_id === t.tradeId);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ status: "CONFIRMED", amount: (10_000_000n + BigInt(i)).toString(), address: t.address });
      expect(timesReported(a, mine[0]!.tx_ref)).toBe(1);
      expect(await history(tc.sql, t.tradeId)).toEqual(["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    }
  }, 60_000);

  it("a reorg (invalidateblock) removing a confirmed-but-not-final deposit moves the trade back", async () => {
    const a = await freshAgent();
    const t = await createTrade(tc.sql, { amount: 5_000_000n });
    await eventually(() => !!a.handle.watch.get(t.address), { timeout: 5_000 });
    const txid = await node.pay({ [t.address]: 5_000_000n });
    const [b1] = await node.mine(1);
    await node.mine(2);
    const ref = `${txid}:${(await node.rpc<{ vout: { n: number; scriptPubKey: { addresses?: string[]; address?: string } }[] }>("getrawtransaction", [txid, true])).vout.find((v) => (v.scriptPubKey.addresses ?? [v.scriptPubKey.address]).includes(t.address))!.n}`;
    await eventually(async () => expect((await deposits(tc.sql)).get(ref)).toMatchObject({ block_hash: b1 }), { timeout: 10_000 });
    expect(await tradeStatus(tc.sql, t.tradeId)).toBe("DEPOSIT_DETECTED");

    // The deposit's block leaves the chain; a longer chain without the transaction replaces it.
    await node.rpc("invalidateblock", [b1]);
    const other = await node.wallet<string>("getnewaddress", ["", "bech32"]);
    for (let i = 0; i < 4; i++) await node.rpc("generateblock", [other, []]);
    await waitStatus(t, "PENDING");
    expect((await deposits(tc.sql)).get(ref)?.status).toBe("REORGED");
    // The new chain passes the old deposit's finality depth: it stays unconfirmed (in the mempool only).
    for (let i = 0; i < 4; i++) await node.rpc("generateblock", [other, []]);
    await eventually(async () => (await tc.sql`SELECT height FROM chain_cursors`)[0]?.height === BigInt(await node.height()), { timeout: 10_000 });
    expect(await tradeStatus(tc.sql, t.tradeId)).toBe("PENDING");
    expect(a.logs.some((l) => l.msg === "Reorg detected")).toBe(true);

    // Mined again on the new chain: detected and, six blocks later, final there.
    const [b2] = await node.mine(1);
    await waitStatus(t, "DEPOSIT_DETECTED");
    await node.mine(5);
    await waitStatus(t, "PAYMENT_CONFIRMED");
    expect((await deposits(tc.sql)).get(ref)).toMatchObject({ status: "CONFIRMED", block_hash: b2 });
    expect(await history(tc.sql, t.tradeId)).toEqual(["DEPOSIT_DETECTED", "PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
  }, 60_000);

  it("an RBF replacement of an unconfirmed deposit by one paying elsewhere moves the trade back", async () => {
    const a = await freshAgent();
    const t = await createTrade(tc.sql, { amount: 7_000_000n });
    await eventually(() => !!a.handle.watch.get(t.address), { timeout: 5_000 });
    // replaceable = true (BIP125 signalled)
    const txid = await node.wallet<string>("sendtoaddress", [t.address, satsToCoins(7_000_000n), "", "", false, true]);
    await waitStatus(t, "DEPOSIT_DETECTED");
    const [d] = await depositsOf(t);
    expect(d).toMatchObject({ rbf_signaled: true, amount: "7000000", status: "SEEN" });

    // Same inputs, paying another address with a higher fee: the deposit is gone.
    const tx = await node.rpc<{ vin: { txid: string; vout: number }[]; vout: { value: number }[] }>("getrawtransaction", [txid, true]);
    const inputs = tx.vin.map((v) => ({ txid: v.txid, vout: v.vout, sequence: 0xfffffffd }));
    const prevs = await Promise.all(tx.vin.map((v) => node.rpc<{ vout: { n: number; value: number }[] }>("getrawtransaction", [v.txid, true])));
    const inSats = prevs.reduce((s, p, i) => s + BigInt(Math.round(p.vout.find((o) => o.n === tx.vin[i]!.vout)!.value * 1e8)), 0n);
    const elsewhere = await node.wallet<string>("getnewaddress", ["", "bech32"]);
    const raw = await node.rpc<string>("createrawtransaction", [inputs, { [elsewhere]: satsToCoins(inSats - 100_000n) }]);
    const signed = await node.wallet<{ hex: string; complete: boolean }>("signrawtransactionwithwallet", [raw]);
    expect(signed.complete).toBe(true);
    const replacement = await node.rpc<string>("sendrawtransaction", [signed.hex]);
    expect(replacement).not.toBe(txid);

    await waitStatus(t, "PENDING");
    expect((await deposits(tc.sql)).get(d!.tx_ref)?.status).toBe("FAILED");
    expect(await history(tc.sql, t.tradeId)).toEqual(["DEPOSIT_DETECTED", "PENDING"]);
    // Mining the replacement changes nothing for the trade.
    await node.mine(6);
    await eventually(async () => (await tc.sql`SELECT height FROM chain_cursors`)[0]?.height === BigInt(await node.height()), { timeout: 10_000 });
    expect(await tradeStatus(tc.sql, t.tradeId)).toBe("PENDING");
  }, 60_000);

  it("survives the node restarted under it", async () => {
    const a = await freshAgent();
    const t = await createTrade(tc.sql, { amount: 3_000_000n });
    await eventually(() => !!a.handle.watch.get(t.address), { timeout: 5_000 });
    await node.stop();
    await eventually(() => a.logs.some((l) => l.msg === "Following failed; backing off and retrying from the cursor"), { timeout: 10_000 });
    await node.restart();
    await node.pay({ [t.address]: 3_000_000n });
    await waitStatus(t, "DEPOSIT_DETECTED", 30_000);
    await node.mine(6);
    await waitStatus(t, "PAYMENT_CONFIRMED", 30_000);
    const mine = await depositsOf(t);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ status: "CONFIRMED", amount: "3000000" });
  }, 90_000);

  it("reads the same blocks and deposits over REST as over JSON-RPC", async () => {
    await freshAgent();
    const t = await createTrade(tc.sql, { amount: 2_000_000n });
    await eventually(() => !!agent.handle.watch.get(t.address), { timeout: 5_000 });
    const txid = await node.pay({ [t.address]: 2_000_000n });
    await node.mine(1);
    const h = BigInt(await node.height());
    const rpc = createUtxoRpc({
      url: node.url,
      auth: { kind: "password", user: RPC_USER, password: RPC_PASSWORD },
      restUrl: node.url,
      timeoutMs: 5_000,
      maxInFlight: 2,
      batchSize: 5,
      logger: createLogger({ name: "rest-test", level: "silent" }),
    });
    const readScript = createScriptReader(CHAINS["litecoin-regtest"], ["p2wpkh"]);
    const viaRpc = await createBlockSource({ rpc, watch: agent.handle.watch, readScript, useRest: false }).process(h - 2n, h);
    const viaRest = await createBlockSource({ rpc, watch: agent.handle.watch, readScript, useRest: true }).process(h - 2n, h);
    expect(viaRest).toEqual(viaRpc);
    expect(viaRest.blocks[2]!.deposits).toEqual([expect.objectContaining({ txHash: txid, address: t.address, amount: 2_000_000n })]);
  }, 30_000);
});
