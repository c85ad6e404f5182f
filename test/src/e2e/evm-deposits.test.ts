import { eventually, type RunningProcess } from "@ponte/common/testing";
import { Contract, parseUnits } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployLookalike, mined, startEvmAgent, startEvmChain, type EvmChain } from "../harness/evm.js";
import { startStack, type Stack } from "../harness/stack.js";

// Issue 3 end to end: the real EVM agent on a real anvil, the real coordinator and gateway.
// Finality on the local registry and the agent's anvil config: 2 confirmations.
let s: Stack;
let chain: EvmChain;
let agent: RunningProcess;
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

beforeAll(async () => {
  chain = await startEvmChain();
  s = await startStack({ env: { ...chain.overrides, ADDRESS_POOL_LOW_WATER: "10", ADDRESS_POOL_TARGET: "40" } });
  agent = await startEvmAgent(s, chain);
  await agent.waitForLog("Deposit-address pool refilled");
});
afterAll(async () => {
  await agent?.kill("SIGTERM");
  await s?.stop();
  await chain?.anvil.stop();
});

async function sell(user: string, body: Record<string, string>) {
  const token = s.token(user);
  const q = await s.api("/api/v1/instant-trade/quote", { token, body });
  expect(q.status).toBe(200);
  const c = await s.api("/api/v1/instant-trade/create", {
    token,
    body: { quote_id: q.body.quote_id, refund_address: refund },
    headers: { "idempotency-key": `k-${q.body.quote_id}` },
  });
  expect(c.status).toBe(201);
  return c.body as { id: string; deposit_address: string; crypto_amount: string };
}
const get = async (user: string, id: string) => (await s.api(`/api/v1/instant-trade/${id}`, { token: s.token(user) })).body;
const statusOf = async (user: string, id: string) => (await get(user, id)).status as string;
const usdt = (human: string) => parseUnits(human, 6);
const payUsdt = (to: string, amount: bigint, token: Contract = chain.token) =>
  mined(token.getFunction("mint")(to, amount));
const payEth = (to: string, human: string) => mined(chain.anvil.wallet(1).sendTransaction({ to, value: parseUnits(human, 18) }));
const history = async (id: string) =>
  (await s.sql<{ to_status: string }[]>`SELECT to_status FROM instant_trade_history WHERE trade_id = ${id} ORDER BY version`).map((r) => r.to_status);

describe("EVM deposits end to end", () => {
  it("detects USDT and ETH deposits to many trades and confirms them at the finality depth", async () => {
    const usdtTrades = await Promise.all(["10", "20", "30", "40"].map((a, i) => sell(`u-many-${i}`, { symbol: "USDT", network: "anvil", crypto_amount: a })));
    const ethTrade = await sell("u-many-eth", { symbol: "ETH", network: "anvil", crypto_amount: "0.01" });
    for (const [i, t] of usdtTrades.entries()) await payUsdt(t.deposit_address, usdt(String((i + 1) * 10)));
    await payEth(ethTrade.deposit_address, "0.01");
    await eventually(async () => expect(await statusOf("u-many-eth", ethTrade.id)).toBe("DEPOSIT_DETECTED"), { timeout: 10_000 });
    await chain.anvil.mine(2);
    for (const [i, t] of usdtTrades.entries()) {
      await eventually(async () => expect(await get(`u-many-${i}`, t.id)).toMatchObject({ status: "PAYMENT_CONFIRMED", confirmed_amount: t.crypto_amount }), { timeout: 10_000 });
      expect(await history(t.id)).toEqual(["PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    }
    await eventually(async () => expect(await get("u-many-eth", ethTrade.id)).toMatchObject({ status: "PAYMENT_CONFIRMED", confirmed_amount: "0.01" }));
  });

  it("sums partial payments; an overpayment confirms; a shortfall is UNDERPAID at the deadline", async () => {
    const partial = await sell("u-part", { symbol: "USDT", network: "anvil", crypto_amount: "50" });
    const over = await sell("u-over", { symbol: "USDT", network: "anvil", crypto_amount: "50" });
    const short = await sell("u-short", { symbol: "USDT", network: "anvil", crypto_amount: "50" });
    await payUsdt(partial.deposit_address, usdt("20"));
    await payUsdt(over.deposit_address, usdt("60"));
    await payUsdt(short.deposit_address, usdt("10"));
    await chain.anvil.mine(2);
    await eventually(async () => expect(await statusOf("u-over", over.id)).toBe("PAYMENT_CONFIRMED"));
    await eventually(async () => expect(await get("u-part", partial.id)).toMatchObject({ status: "DEPOSIT_DETECTED", confirmed_amount: "20" }));
    await payUsdt(partial.deposit_address, usdt("30"));
    await chain.anvil.mine(2);
    await eventually(async () => expect(await get("u-part", partial.id)).toMatchObject({ status: "PAYMENT_CONFIRMED", confirmed_amount: "50" }));
    expect(await statusOf("u-short", short.id)).toBe("DEPOSIT_DETECTED");
    await s.sql`UPDATE instant_trades SET expires_at = now() - interval '1 second' WHERE id = ${short.id}`;
    await eventually(async () => expect(await statusOf("u-short", short.id)).toBe("UNDERPAID"));
    const [ex] = await s.sql<{ data: Record<string, string> }[]>`
      SELECT data FROM instant_trade_history WHERE trade_id = ${over.id} AND to_status = 'PAYMENT_CONFIRMED'`;
    expect(ex!.data.excess_amount).toBe(usdt("10").toString());
  });

  // A reverted payment to a watched address is covered on anvil in agents/evm (block processor).
  it("ignores a look-alike token and a transfer to an unwatched address", async () => {
    const t = await sell("u-fake", { symbol: "USDT", network: "anvil", crypto_amount: "15" });
    const fake = await deployLookalike(chain);
    await payUsdt(t.deposit_address, usdt("15"), fake);
    await payUsdt("0x000000000000000000000000000000000000dEaD", usdt("15"));
    await chain.anvil.mine(3);
    const head = await chain.anvil.height();
    await eventually(async () => {
      const [c] = await s.sql<{ height: bigint }[]>`SELECT height FROM chain_cursors WHERE network = 'anvil'`;
      expect(c!.height).toBeGreaterThanOrEqual(head);
    });
    expect(await statusOf("u-fake", t.id)).toBe("PENDING");
    const [n] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM deposits WHERE address ILIKE ${t.deposit_address}`;
    expect(n!.n).toBe(0);
  });

  it("a reorg before finality sends the trade back to PENDING; re-mined, it is confirmed once", async () => {
    const t = await sell("u-reorg", { symbol: "USDT", network: "anvil", crypto_amount: "12" });
    // Blocks by hand while the deposit is unfinal: the agent's own sweeps would otherwise be
    // mined at once (automine) and carry the deposit past finality before the reorg.
    await chain.anvil.rpc("evm_setAutomine", [false]);
    let payHash: string;
    try {
      const snap = await chain.anvil.rpc<string>("evm_snapshot");
      const sent = await chain.token.getFunction("mint")(t.deposit_address, usdt("12"));
      payHash = (sent.hash as string).toLowerCase();
      await chain.anvil.mine(1);
      await eventually(async () => expect(await statusOf("u-reorg", t.id)).toBe("DEPOSIT_DETECTED"));
      await chain.anvil.rpc("evm_revert", [snap]);
      await chain.anvil.mine(1); // a different block at the deposit's height
      await eventually(async () => expect(await statusOf("u-reorg", t.id)).toBe("PENDING"), { timeout: 10_000 });
    } finally {
      await chain.anvil.rpc("evm_setAutomine", [true]);
    }
    const [orphan] = await s.sql<{ status: string }[]>`SELECT status FROM deposits WHERE tx_hash = ${payHash}`;
    expect(orphan!.status).toBe("REORGED");
    // The same payment lands again in the new chain.
    await payUsdt(t.deposit_address, usdt("12"));
    await chain.anvil.mine(2);
    await eventually(async () => expect(await statusOf("u-reorg", t.id)).toBe("PAYMENT_CONFIRMED"), { timeout: 10_000 });
    expect(await history(t.id)).toEqual(["PENDING", "DEPOSIT_DETECTED", "PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    const [counted] = await s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM deposits WHERE trade_id = ${t.id} AND status = 'CONFIRMED'`;
    expect(counted!.n).toBe(1);
  });

  it("a deposit to an expired trade is recorded as late", async () => {
    const t = await sell("u-late", { symbol: "USDT", network: "anvil", crypto_amount: "11" });
    await s.sql`UPDATE instant_trades SET expires_at = now() - interval '1 second' WHERE id = ${t.id}`;
    await eventually(async () => expect(await statusOf("u-late", t.id)).toBe("EXPIRED"));
    await payUsdt(t.deposit_address, usdt("11"));
    await chain.anvil.mine(2);
    await eventually(async () => {
      const [d] = await s.sql<{ late: boolean; status: string }[]>`SELECT late, status FROM deposits WHERE trade_id = ${t.id}`;
      expect(d).toMatchObject({ late: true, status: "CONFIRMED" });
    });
    // The trade stays closed: never DEPOSIT_DETECTED again. (The refund planner may already have
    // moved it on to REFUND_PENDING for the late deposit.)
    expect(["EXPIRED", "REFUND_PENDING"]).toContain(await statusOf("u-late", t.id));
    expect(await history(t.id)).not.toContain("DEPOSIT_DETECTED");
  });
});
