import { eventually, type RunningProcess } from "@ponte/common/testing";
import { parseUnits } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mined, startEvmAgent, startEvmChain, type EvmChain } from "../harness/evm.js";
import { startStack, type Stack } from "../harness/stack.js";

// Issue 3's faults with real processes: an agent killed mid catch-up, and a standby taking over.
let s: Stack;
let chain: EvmChain;
const agents: RunningProcess[] = [];
const refund = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";

beforeAll(async () => {
  chain = await startEvmChain();
  s = await startStack({ env: { ...chain.overrides, ADDRESS_POOL_LOW_WATER: "10", ADDRESS_POOL_TARGET: "60", LEASE_TTL_MS: "1500" } });
});
afterAll(async () => {
  for (const a of agents) await a.kill("SIGKILL");
  await s?.stop();
  await chain?.anvil.stop();
});

async function agent(name: string, env: Record<string, string> = {}) {
  const a = await startEvmAgent(s, chain, { name, env: { AGENT_ID: name, ...env } });
  agents.push(a);
  return a;
}
async function sell(user: string, amount: string) {
  const token = s.token(user);
  const q = await s.api("/api/v1/instant-trade/quote", { token, body: { symbol: "USDT", network: "anvil", crypto_amount: amount } });
  const c = await s.api("/api/v1/instant-trade/create", {
    token,
    body: { quote_id: q.body.quote_id, refund_address: refund },
    headers: { "idempotency-key": `k-${q.body.quote_id}` },
  });
  expect(c.status).toBe(201);
  return c.body as { id: string; deposit_address: string };
}
const depositsOf = async (ids: string[]) =>
  s.sql<{ trade_id: string; n: number; status: string }[]>`
    SELECT trade_id, count(*)::int AS n, min(status) AS status FROM deposits WHERE trade_id = ANY(${ids}) GROUP BY trade_id`;

describe("EVM agent faults", () => {
  it("killed (SIGKILL) in the middle of a catch-up and restarted: every deposit found exactly once", async () => {
    const first = await agent("agent-a");
    await first.waitForLog("Deposit-address pool refilled");
    const trades = await Promise.all(Array.from({ length: 12 }, (_, i) => sell(`u-kill-${i}`, "5")));
    await first.kill("SIGKILL");
    // While no agent runs: deposits among 400 empty blocks, so the restart has a catch-up to do.
    for (const [i, t] of trades.entries()) {
      await chain.anvil.mine(30);
      await mined(chain.token.getFunction("mint")(t.deposit_address, parseUnits("5", 6)));
      if (i === 5) await chain.anvil.mine(40);
    }
    await chain.anvil.mine(3);
    const second = await agent("agent-b");
    // Kill it as soon as it has stored part of the catch-up, then start a third.
    await eventually(async () => {
      const rows = await depositsOf(trades.map((t) => t.id));
      expect(rows.length).toBeGreaterThan(0);
    }, { timeout: 20_000, interval: 10 });
    await second.kill("SIGKILL");
    await agent("agent-c");
    await eventually(async () => {
      const rows = await depositsOf(trades.map((t) => t.id));
      expect(rows).toHaveLength(12);
      for (const r of rows) expect(r).toMatchObject({ n: 1, status: "CONFIRMED" });
    }, { timeout: 30_000 });
    for (const t of trades) {
      const [row] = await s.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${t.id}`;
      expect(row!.status).toBe("PAYMENT_CONFIRMED");
    }
  });

  it("two agents for one network: one reports; kill it and the standby takes over within the lease TTL, missing nothing", async () => {
    for (const a of agents) await a.kill("SIGKILL");
    const a = await agent("agent-x");
    await a.waitForLog("Lease granted");
    const b = await agent("agent-y");
    await b.waitForLog("Standing by");
    const t1 = await sell("u-standby-1", "7");
    await mined(chain.token.getFunction("mint")(t1.deposit_address, parseUnits("7", 6)));
    await chain.anvil.mine(2);
    await eventually(async () => expect((await depositsOf([t1.id]))[0]).toMatchObject({ n: 1, status: "CONFIRMED" }));
    const [lease] = await s.sql<{ holder: string }[]>`SELECT holder FROM agent_leases WHERE network = 'anvil'`;
    expect(lease!.holder).toBe("agent-x");
    expect(b.lines.some((l) => l.includes("Lease granted"))).toBe(false);

    await a.kill("SIGKILL");
    const killedAt = Date.now();
    const t2 = await sell("u-standby-2", "8");
    await mined(chain.token.getFunction("mint")(t2.deposit_address, parseUnits("8", 6)));
    await chain.anvil.mine(2);
    await b.waitForLog("Lease granted", { timeout: 10_000 });
    expect(Date.now() - killedAt).toBeLessThan(1500 * 3);
    await eventually(async () => expect((await depositsOf([t2.id]))[0]).toMatchObject({ n: 1, status: "CONFIRMED" }), { timeout: 15_000 });
    const [after] = await s.sql<{ holder: string; epoch: bigint }[]>`SELECT holder, epoch FROM agent_leases WHERE network = 'anvil'`;
    expect(after!.holder).toBe("agent-y");
  });
});
