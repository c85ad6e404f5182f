import { eventually, type RunningProcess } from "@ponte/common/testing";
import { HDNodeWallet, parseEther, Transaction, Wallet } from "ethers";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MNEMONIC, mined, startEvmAgent, startEvmChain, type EvmChain } from "../harness/evm.js";
import { startStack, type Stack } from "../harness/stack.js";

// Issue 5 end to end, through the gateway, with the real EVM agent on anvil: custodial sells, the
// excess of an over-payment and late deposits given back, and the hot wallet rebalanced to cold.
const HOT = HDNodeWallet.fromPhrase(AGENT_MNEMONIC, undefined, "m/44'/60'/1'/0/0").address;
const custodialWallet = (i: number) => HDNodeWallet.fromPhrase(AGENT_MNEMONIC, undefined, `m/44'/60'/2'/0/${i}`).address;
const COLD = Wallet.createRandom().address;
const CEILING = parseEther("30");
const TRADE_TTL_SECONDS = 15;

let s: Stack;
let chain: EvmChain;
let agent: RunningProcess;
let mining: NodeJS.Timeout | undefined;

beforeAll(async () => {
  chain = await startEvmChain();
  // The agent's anvil config with a cold wallet and a hot-wallet ceiling.
  const config = JSON.parse(readFileSync(chain.configFile, "utf8")) as Record<string, unknown>;
  writeFileSync(chain.configFile, JSON.stringify({ ...config, cold_wallet: COLD, hot_ceiling: CEILING.toString(), balance_interval_ms: 300 }));
  s = await startStack({
    env: { ...chain.overrides, ADDRESS_POOL_LOW_WATER: "5", ADDRESS_POOL_TARGET: "20", TRANSFER_INTERVAL_MS: "200", TRADE_TTL_SECONDS: String(TRADE_TTL_SECONDS) },
  });
  agent = await startEvmAgent(s, chain);
  await agent.waitForLog("Deposit-address pool refilled");
  await mined(chain.anvil.wallet(0).sendTransaction({ to: HOT, value: parseEther("100") }));
  // Blocks keep coming, so transfers reach the finality depth (2 confirmations).
  mining = setInterval(() => void chain.anvil.mine(1).catch(() => {}), 300);
}, 120_000);
afterAll(async () => {
  if (mining) clearInterval(mining);
  await agent?.kill("SIGTERM");
  await s?.stop();
  await chain?.anvil.stop();
});

const eth = (a: string) => chain.anvil.provider.getBalance(a);
const refundTo = () => Wallet.createRandom().address;

async function quote(user: string, amount: string) {
  const q = await s.api("/api/v1/instant-trade/quote", { token: s.token(user), body: { symbol: "ETH", network: "anvil", crypto_amount: amount } });
  expect(q.status).toBe(200);
  return q.body.quote_id as string;
}
async function create(user: string, body: Record<string, unknown>) {
  return s.api("/api/v1/instant-trade/create", { token: s.token(user), body, headers: { "idempotency-key": `k-${String(body.quote_id)}` } });
}
const trade = async (user: string, id: string) => (await s.api(`/api/v1/instant-trade/${id}`, { token: s.token(user) })).body;
const audit = async (user: string, id: string) => (await s.api(`/api/v1/instant-trade/${id}/audit-log`, { token: s.token(user) })).body;
const putAccount = (user: string, address: string, index: number, token = s.adminToken()) =>
  s.api(`/api/v1/admin/custodial-accounts/anvil/${user}`, { method: "PUT", token, body: { address, derivation_index: index } });
/** The transaction an order landed, as signed. */
async function landed(orderId: string): Promise<Transaction> {
  const [a] = await s.sql<{ raw_tx: string }[]>`
    SELECT a.raw_tx FROM transfer_attempts a JOIN transfer_transactions o ON o.id = a.order_id AND o.confirmed_tx_hash = a.tx_hash
     WHERE o.id = ${orderId}`;
  return Transaction.from(a!.raw_tx);
}

describe("custodial sells through the gateway", () => {
  it("moves the quoted amount from the seller's custodial wallet to the hot wallet and confirms the trade", async () => {
    const wallet = custodialWallet(5);
    await mined(chain.anvil.wallet(0).sendTransaction({ to: wallet, value: parseEther("1") }));
    const put = await putAccount("u-cust", wallet.toLowerCase(), 5);
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ user_id: "u-cust", network: "anvil", address: wallet, derivation_index: 5 });
    expect((await s.api("/api/v1/users/me/custodial-accounts/anvil", { token: s.token("u-cust") })).body).toMatchObject({ address: wallet });

    const c = await create("u-cust", { quote_id: await quote("u-cust", "0.2"), source: "custodial" });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ source: "custodial", status: "PENDING", deposit_address: wallet, refund_address: wallet, crypto_amount: "0.2" });
    await eventually(async () => expect(await trade("u-cust", c.body.id)).toMatchObject({ status: "PAYMENT_CONFIRMED", confirmed_amount: "0.2" }), {
      timeout: 30_000,
    });
    const log = await audit("u-cust", c.body.id);
    expect(log.entries.map((e: { to_status: string }) => e.to_status)).toEqual(["PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    const sell = log.transfers.find((t: { kind: string }) => t.kind === "CUSTODIAL_SELL");
    expect(sell).toMatchObject({ status: "CONFIRMED", from_address: wallet, to_address: HOT, amount_base_units: parseEther("0.2").toString() });
    // Exactly the quoted amount reached the hot wallet; the wallet paid the fee on top; nothing to sweep.
    const tx = await landed(sell.order_id);
    expect(tx).toMatchObject({ to: HOT, value: parseEther("0.2") });
    const receipt = await chain.anvil.provider.getTransactionReceipt(tx.hash!);
    expect(receipt!.status).toBe(1);
    expect(await eth(wallet)).toBe(parseEther("0.8") - receipt!.gasUsed * receipt!.gasPrice);
    expect(log.transfers.filter((t: { kind: string }) => t.kind === "SWEEP")).toEqual([]);
  }, 60_000);

  it("answers clear errors for bad custodial requests and changes nothing", async () => {
    // No wallet registered for this user.
    let r = await create("u-nowallet", { quote_id: await quote("u-nowallet", "0.01"), source: "custodial" });
    expect(r).toMatchObject({ status: 409, body: { error: { code: "CUSTODIAL_ACCOUNT_NOT_FOUND" } } });
    // A refund address makes no sense for a custodial sell; a deposit sell needs one.
    r = await create("u-cust", { quote_id: await quote("u-cust", "0.01"), source: "custodial", refund_address: refundTo() });
    expect(r).toMatchObject({ status: 422, body: { error: { code: "VALIDATION_ERROR" } } });
    r = await create("u-cust", { quote_id: await quote("u-cust", "0.01") });
    expect(r).toMatchObject({ status: 422, body: { error: { code: "VALIDATION_ERROR" } } });
    r = await create("u-cust", { quote_id: await quote("u-cust", "0.01"), source: "exchange" });
    expect(r).toMatchObject({ status: 422, body: { error: { code: "VALIDATION_ERROR" } } });
    // Registering is for admins, with a valid address, and never another user's wallet.
    expect((await putAccount("u-x", custodialWallet(6), 6, s.token("u-x"))).status).toBe(403);
    expect((await putAccount("u-x", "0x1234", 6)).body.error?.code).toBe("INVALID_ADDRESS");
    expect((await putAccount("u-x", custodialWallet(5), 5)).body.error?.code).toBe("INVALID_STATE");
    expect((await putAccount("u-x", custodialWallet(6), -1)).status).toBe(422);
    const [n] = await s.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM custodial_accounts WHERE user_id IN ('u-x', 'u-nowallet')`;
    expect(n!.n).toBe(0n);
    const [t] = await s.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM instant_trades WHERE user_id = 'u-nowallet'`;
    expect(t!.n).toBe(0n);
  });

  it("a wallet registered at the wrong index is refused by the agent: the trade is CANCELLED and nothing moves", async () => {
    const wallet = custodialWallet(7);
    await mined(chain.anvil.wallet(0).sendTransaction({ to: wallet, value: parseEther("1") }));
    expect((await putAccount("u-wrong", wallet, 8)).status).toBe(200);
    const c = await create("u-wrong", { quote_id: await quote("u-wrong", "0.1"), source: "custodial" });
    expect(c.status).toBe(201);
    expect((await s.api(`/api/v1/instant-trade/${c.body.id}/cancel`, { token: s.token("u-wrong"), body: {} })).body.error?.code).toBe("INVALID_STATE");
    await eventually(async () => expect((await trade("u-wrong", c.body.id)).status).toBe("CANCELLED"), { timeout: 30_000 });
    const sell = (await audit("u-wrong", c.body.id)).transfers[0];
    expect(sell).toMatchObject({ kind: "CUSTODIAL_SELL", status: "FAILED" });
    expect(sell.reason).toMatch(/not derivable/);
    expect(await eth(wallet)).toBe(parseEther("1"));
  }, 60_000);
});

describe("what a trade did not pay for goes back", () => {
  it("refunds an over-payment's excess (less its fee) once the sweep is final", async () => {
    const refund = refundTo();
    const c = await create("u-over", { quote_id: await quote("u-over", "0.01"), refund_address: refund });
    expect(c.status).toBe(201);
    await mined(chain.anvil.wallet(1).sendTransaction({ to: c.body.deposit_address, value: parseEther("0.03") }));
    await eventually(async () => expect((await trade("u-over", c.body.id)).status).toBe("PAYMENT_CONFIRMED"), { timeout: 30_000 });
    const excess = await eventually(
      async () => {
        const t = (await audit("u-over", c.body.id)).transfers.find((x: { purpose: string }) => x.purpose === "excess");
        expect(t).toMatchObject({ kind: "REFUND", status: "CONFIRMED", from_address: HOT, to_address: refund, amount_base_units: parseEther("0.02").toString() });
        return t;
      },
      { timeout: 40_000 },
    );
    const tx = await landed(excess.order_id);
    // The network fee comes out of the excess; the rest reaches the seller.
    expect(tx.value).toBe(parseEther("0.02") - tx.gasLimit * tx.maxFeePerGas!);
    expect(await eth(refund)).toBe(tx.value);
    const sweep = (await audit("u-over", c.body.id)).transfers.find((x: { kind: string }) => x.kind === "SWEEP");
    expect(sweep).toMatchObject({ status: "CONFIRMED", amount_base_units: parseEther("0.03").toString() });
  }, 80_000);

  it("refunds a deposit to a trade that expired, then another after it was REFUNDED", async () => {
    const refund = refundTo();
    const c = await create("u-late", { quote_id: await quote("u-late", "0.01"), refund_address: refund });
    expect(c.status).toBe(201);
    await eventually(async () => expect((await trade("u-late", c.body.id)).status).toBe("EXPIRED"), { timeout: (TRADE_TTL_SECONDS + 20) * 1000, interval: 500 });
    await mined(chain.anvil.wallet(1).sendTransaction({ to: c.body.deposit_address, value: parseEther("0.01") }));
    await eventually(async () => expect((await trade("u-late", c.body.id)).status).toBe("REFUNDED"), { timeout: 40_000 });
    const first = await eth(refund);
    expect(first > parseEther("0.0099")).toBe(true);

    await mined(chain.anvil.wallet(1).sendTransaction({ to: c.body.deposit_address, value: parseEther("0.02") }));
    const late = await eventually(
      async () => {
        const t = (await audit("u-late", c.body.id)).transfers.find((x: { purpose: string }) => x.purpose === "late_deposit");
        expect(t).toMatchObject({ kind: "REFUND", status: "CONFIRMED", from_address: c.body.deposit_address, amount_base_units: parseEther("0.02").toString() });
        return t;
      },
      { timeout: 40_000 },
    );
    const tx = await landed(late.order_id);
    expect(await eth(refund)).toBe(first + tx.value);
    // What stays behind is each refund's EIP-1559 headroom: gas limit × max fee, less the fee paid.
    let dust = 0n;
    for (const r of (await audit("u-late", c.body.id)).transfers as { order_id: string; kind: string }[]) {
      expect(r.kind).toBe("REFUND");
      const sent = await landed(r.order_id);
      const receipt = await chain.anvil.provider.getTransactionReceipt(sent.hash!);
      dust += sent.gasLimit * sent.maxFeePerGas! - receipt!.gasUsed * receipt!.gasPrice;
    }
    expect(await eth(c.body.deposit_address)).toBe(dust);
    // The trade stays REFUNDED: REFUNDED is final.
    expect((await trade("u-late", c.body.id)).status).toBe("REFUNDED");
  }, 120_000);
});

describe("the hot wallet above its ceiling", () => {
  it("moves the excess to the cold wallet, one order at a time, until the hot wallet is back near its ceiling", async () => {
    await eventually(
      async () => {
        const [r] = await s.sql<{ n: bigint }[]>`SELECT count(*) AS n FROM transfer_transactions WHERE kind = 'REBALANCE' AND status = 'CONFIRMED'`;
        expect(r!.n).toBeGreaterThan(0n);
        expect(await eth(HOT)).toBeLessThanOrEqual(CEILING + CEILING / 10n);
      },
      { timeout: 40_000 },
    );
    const orders = await s.sql<{ id: string; status: string; to_address: string }[]>`
      SELECT id, status, to_address FROM transfer_transactions WHERE kind = 'REBALANCE' ORDER BY created_at`;
    expect(orders.every((o) => o.to_address === COLD)).toBe(true);
    let sent = 0n;
    for (const o of orders.filter((x) => x.status === "CONFIRMED")) sent += (await landed(o.id)).value;
    expect(await eth(COLD)).toBe(sent);
    const [live] = await s.sql<{ n: bigint }[]>`
      SELECT count(*) AS n FROM transfer_transactions WHERE kind = 'REBALANCE' AND status IN ('PENDING', 'SIGNED', 'BROADCAST')`;
    expect(live!.n).toBeLessThanOrEqual(1n);
  }, 60_000);
});
