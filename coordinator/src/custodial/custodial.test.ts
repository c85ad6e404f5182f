// Custodial sells against the real database: the account register, the trade created with its
// CUSTODIAL_SELL order in one transaction, and the order's progress moving the trade.
import { createLogger, PonteError } from "@ponte/common";
import { getAddress } from "ethers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import { createCoordinatorMetrics } from "../metrics.js";
import { createStaticPriceSource } from "../quote/price.js";
import { loadAssetRegistry } from "../quote/registry.js";
import { createTradeService, type TradeService } from "../trade/service.js";
import { createTransfers, type Transfers, type TransferStatus } from "../transfer/index.js";

const USDT = "0x00000000000000000000000000000000000000aa";
const HOT = getAddress("0x00000000000000000000000000000000000000f1");
const WALLET = getAddress("0x5c7d1ae2e4a9b4cd3a6f30f7e3c5a1f0b2d9e8c4");
const registry = loadAssetRegistry(fileURLToPath(new URL("../../assets/local.json", import.meta.url)), {
  contractOverrides: { "anvil:USDT": USDT },
});
let db: Awaited<ReturnType<typeof testDb>>;
let trades: TradeService;
let transfers: Transfers;

beforeAll(async () => {
  db = await testDb();
  const common = {
    sql: db.sql,
    logger: createLogger({ name: "test", level: "silent" }),
    metrics: createCoordinatorMetrics(),
    registry,
    prices: createStaticPriceSource({ USDT: "5.40", ETH: "15000" }),
    transitions: { subjectPrefix: "ponte.trade" },
  };
  trades = createTradeService({
    ...common,
    options: { quoteTtlSeconds: 60, tradeTtlSeconds: 1800, monitoringGraceSeconds: 3600, dailyLimitCentavos: 10n ** 9n, tradeMaxCentavos: 10n ** 9n },
  });
  transfers = createTransfers({
    ...common,
    options: { sweepMaxFeeBps: 500n, maxSweepOrders: 3, intervalMs: 1000, batchSize: 50, rebalanceMarginBps: 1000n },
  });
});
afterAll(async () => {
  await db.close();
});

const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof PonteError) return err.code;
    throw err;
  }
  return "none";
};
let keyN = 0;
async function sell(userId: string, symbol: "ETH" | "USDT", amount: string, extra: { refundAddress?: string } = {}) {
  const q = await trades.createQuote({ userId, symbol, network: "anvil", cryptoAmount: amount });
  return trades.createTrade({
    userId, quoteId: q.id, refundAddress: extra.refundAddress ?? "", idempotencyKey: `k${++keyN}`, requestHash: `h${keyN}`, source: "custodial",
  });
}
const statusOf = async (id: string) => (await db.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${id}`)[0]!.status;
const report = (orderId: string, status: TransferStatus, reason = "") =>
  db.sql.begin((tx) =>
    transfers.report("anvil", { orderId, status, reason, blockHeight: 40n, attempt: { attempt: 1, txHash: `0xtx${orderId}`, rawTx: "0xraw", nonce: "0", fee: "21000", status } }, tx),
  );

describe("custodial accounts", () => {
  it("registers a wallet, normalises its address, and refuses bad input or another user's wallet", async () => {
    const a = await trades.custodialAccounts.put({ userId: "alice", network: "anvil", address: WALLET.toLowerCase(), derivationIndex: 7 });
    expect(a).toMatchObject({ userId: "alice", network: "anvil", address: WALLET, derivationIndex: 7 });
    expect(await trades.custodialAccounts.get("alice", "anvil")).toMatchObject({ address: WALLET, derivationIndex: 7 });
    expect(await code(trades.custodialAccounts.get("nobody", "anvil"))).toBe("CUSTODIAL_ACCOUNT_NOT_FOUND");
    expect(await code(trades.custodialAccounts.put({ userId: "bob", network: "anvil", address: WALLET, derivationIndex: 8 }))).toBe("INVALID_STATE");
    expect(await code(trades.custodialAccounts.put({ userId: "bob", network: "anvil", address: "0x1234", derivationIndex: 8 }))).toBe("INVALID_ADDRESS");
    expect(await code(trades.custodialAccounts.put({ userId: "bob", network: "anvil", address: HOT, derivationIndex: -1 }))).toBe("VALIDATION_ERROR");
    expect(await code(trades.custodialAccounts.put({ userId: "bob", network: "nowhere", address: HOT, derivationIndex: 1 }))).toBe("ASSET_NOT_FOUND");
    const rows = await db.sql`SELECT user_id FROM custodial_accounts`;
    expect(rows.map((r) => r.user_id)).toEqual(["alice"]);
  });
});

describe("custodial sells", () => {
  it("refuses to create one without a hot wallet, without an account, or with a refund address; nothing is written", async () => {
    expect(await code(sell("alice", "ETH", "0.5"))).toBe("UNAVAILABLE");
    await transfers.registerWallets("anvil", [{ kind: "hot", address: HOT, derivationPath: "m/44'/60'/1'/0/0", keyRef: "vault:secret/x#seed", ceiling: null }]);
    expect(await code(sell("carol", "ETH", "0.5"))).toBe("CUSTODIAL_ACCOUNT_NOT_FOUND");
    expect(await code(sell("alice", "ETH", "0.5", { refundAddress: HOT }))).toBe("VALIDATION_ERROR");
    const q = await trades.createQuote({ userId: "alice", symbol: "ETH", network: "anvil", cryptoAmount: "0.5" });
    expect(await code(trades.createTrade({ userId: "alice", quoteId: q.id, refundAddress: "", idempotencyKey: "x", requestHash: "x", source: "exchange" }))).toBe(
      "VALIDATION_ERROR",
    );
    expect(await db.sql`SELECT id FROM instant_trades`).toEqual([]);
    expect(await db.sql`SELECT id FROM transfer_transactions`).toEqual([]);
  });

  it("orders the quoted amount from the wallet to the hot wallet; broadcast → DEPOSIT_DETECTED, final → PAYMENT_CONFIRMED", async () => {
    const { trade } = await sell("alice", "ETH", "0.5");
    expect(trade).toMatchObject({ source: "custodial", status: "PENDING", depositAddress: WALLET, refundAddress: WALLET, cryptoAmount: 5n * 10n ** 17n });
    const [order] = await transfers.ordersOfTrade(trade.id);
    expect(order).toMatchObject({
      kind: "CUSTODIAL_SELL", fromAddress: WALLET, toAddress: HOT, amount: 5n * 10n ** 17n, deductFee: false, contract: "", fromDerivationIndex: 7,
    });
    expect((await transfers.actionable("anvil")).map((o) => o.id)).toContain(order!.id);
    // Not the user's to cancel, and the expiry worker leaves it alone (its order decides).
    expect(await code(trades.cancelTrade({ tradeId: trade.id, actor: { kind: "user", id: "alice" }, userId: "alice", reason: "" }))).toBe("INVALID_STATE");
    // Not in any agent's watch set: the wallet is not a deposit address.
    expect(await db.sql`SELECT address FROM deposit_addresses WHERE trade_id = ${trade.id}`).toEqual([]);

    await report(order!.id, "SIGNED");
    expect(await statusOf(trade.id)).toBe("PENDING");
    await report(order!.id, "BROADCAST");
    expect(await statusOf(trade.id)).toBe("DEPOSIT_DETECTED");
    await report(order!.id, "CONFIRMED");
    expect(await statusOf(trade.id)).toBe("PAYMENT_CONFIRMED");
    const [t] = await db.sql<{ received_amount: string; confirmed_amount: string; paid_amount: string }[]>`
      SELECT received_amount::text, confirmed_amount::text, paid_amount::text FROM instant_trades WHERE id = ${trade.id}`;
    expect(t).toEqual({ received_amount: "500000000000000000", confirmed_amount: "500000000000000000", paid_amount: "500000000000000000" });
    const deps = await db.sql`SELECT tx_hash, amount::text, status, block_height FROM deposits WHERE trade_id = ${trade.id}`;
    expect(deps).toEqual([{ tx_hash: `0xtx${order!.id}`, amount: "500000000000000000", status: "CONFIRMED", block_height: 40n }]);
    // Already in the hot wallet: nothing to sweep.
    await transfers.planOnce();
    expect(await transfers.ordersOfTrade(trade.id)).toHaveLength(1);
    // A repeated report changes nothing.
    await report(order!.id, "CONFIRMED");
    expect(await statusOf(trade.id)).toBe("PAYMENT_CONFIRMED");
  });

  it("a token sell tops up the wallet's gas first; when the top-up fails the sell fails and the trade is CANCELLED", async () => {
    const { trade } = await sell("alice", "USDT", "250");
    const [topup, order] = await transfers.ordersOfTrade(trade.id);
    expect(topup).toMatchObject({ kind: "GAS_TOPUP", fromAddress: HOT, toAddress: WALLET, contract: USDT });
    expect(order).toMatchObject({ kind: "CUSTODIAL_SELL", dependsOn: topup!.id, amount: 250_000_000n, contract: USDT });
    await report(topup!.id, "FAILED", "reverted");
    const [, after] = await transfers.ordersOfTrade(trade.id);
    expect(after!.status).toBe("FAILED");
    expect(await statusOf(trade.id)).toBe("CANCELLED");
    const hist = await db.sql<{ to_status: string; actor: string; reason: string }[]>`
      SELECT to_status, actor, reason FROM instant_trade_history WHERE trade_id = ${trade.id} ORDER BY version`;
    expect(hist.at(-1)).toMatchObject({ to_status: "CANCELLED", reason: "custodial transfer failed: its gas top-up failed" });
  });

  it("a sell whose transfer fails after broadcast goes back to PENDING and then CANCELLED; a payout failure refunds to the wallet from hot", async () => {
    const first = await sell("alice", "ETH", "0.2");
    const [o1] = await transfers.ordersOfTrade(first.trade.id);
    await report(o1!.id, "BROADCAST");
    await report(o1!.id, "FAILED", "reverted");
    const hist = await db.sql<{ to_status: string }[]>`SELECT to_status FROM instant_trade_history WHERE trade_id = ${first.trade.id} ORDER BY version`;
    expect(hist.map((h) => h.to_status)).toEqual(["PENDING", "DEPOSIT_DETECTED", "PENDING", "CANCELLED"]);

    const second = await sell("alice", "ETH", "0.3");
    const [o2] = await transfers.ordersOfTrade(second.trade.id);
    await report(o2!.id, "CONFIRMED");
    await db.sql`UPDATE instant_trades SET status = 'REFUND_PENDING' WHERE id = ${second.trade.id}`;
    await transfers.planOnce();
    const refund = (await transfers.ordersOfTrade(second.trade.id)).find((o) => o.kind === "REFUND");
    expect(refund).toMatchObject({ fromAddress: HOT, toAddress: WALLET, amount: 3n * 10n ** 17n, purpose: "trade" });
  });
});
