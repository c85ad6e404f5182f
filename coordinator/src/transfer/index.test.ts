import { createLogger } from "@ponte/common";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import { insertTrade } from "../_test/fixtures.js";
import { createCoordinatorMetrics } from "../metrics.js";
import { createStaticPriceSource } from "../quote/price.js";
import { loadAssetRegistry } from "../quote/registry.js";
import { createTransfers, type Transfers } from "./index.js";

const USDT = "0x00000000000000000000000000000000000000aa";
const HOT = "0x00000000000000000000000000000000000000f1";
const registry = loadAssetRegistry(fileURLToPath(new URL("../../assets/local.json", import.meta.url)), {
  contractOverrides: { "anvil:USDT": USDT },
});
let db: Awaited<ReturnType<typeof testDb>>;
let transfers: Transfers;

beforeAll(async () => {
  db = await testDb();
  transfers = createTransfers({
    sql: db.sql,
    logger: createLogger({ name: "test", level: "silent" }),
    metrics: createCoordinatorMetrics(),
    registry,
    prices: createStaticPriceSource({ USDT: "5.40", ETH: "15000" }),
    transitions: { subjectPrefix: "ponte.trade" },
    options: { sweepMaxFeeBps: 500n, maxSweepOrders: 3, intervalMs: 1000, batchSize: 50 },
  });
  await transfers.registerWallets("anvil", [{ kind: "hot", address: HOT, derivationPath: "m/44'/60'/1'/0/0", keyRef: "vault:secret/x#seed", ceiling: null }]);
});
afterAll(async () => {
  await db.close();
});

/** A trade at `status` with one confirmed deposit of `amount` of its asset. */
async function tradeWithDeposit(status: Parameters<typeof insertTrade>[1]["status"], amount: bigint, opts: { native?: boolean; refund?: string } = {}) {
  const id = await insertTrade(db.sql, { status });
  const [t] = await db.sql<{ deposit_address: string }[]>`
    UPDATE instant_trades SET contract = ${opts.native ? "" : USDT}, symbol = ${opts.native ? "ETH" : "USDT"}, decimals = ${opts.native ? 18 : 6},
           refund_address = ${opts.refund ?? "0x8ba1f109551bd432803012645ac136ddd64dba72"}
     WHERE id = ${id} RETURNING deposit_address`;
  await db.sql`INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status, trade_id)
               VALUES ('anvil', ${t!.deposit_address}, ${Math.floor(Math.random() * 1e9)}, 'm/x', 'ASSIGNED', ${id})`;
  await db.sql`INSERT INTO deposits (network, tx_ref, tx_hash, address, contract, amount, trade_id, status, block_height)
               VALUES ('anvil', ${`0x${id}:0`}, ${`0x${id}`}, ${t!.deposit_address}, ${opts.native ? "" : USDT}, ${amount.toString()}, ${id}, 'CONFIRMED', 10)`;
  return { id, depositAddress: t!.deposit_address };
}
const orders = (tradeId: string) => transfers.ordersOfTrade(tradeId);
const report = (orderId: string, status: "SIGNED" | "BROADCAST" | "CONFIRMED" | "FAILED" | "SKIPPED", attempt = 1, reason = "") =>
  db.sql.begin((tx) =>
    transfers.report("anvil", { orderId, status, reason, blockHeight: 12n, attempt: { attempt, txHash: `0xtx${orderId}${attempt}`, rawTx: "0xraw", nonce: "7", fee: "21000", status } }, tx),
  );
const statusOf = async (id: string) => (await db.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${id}`)[0]!.status;

describe("sweeps", () => {
  it("a confirmed token trade gets a gas top-up then a sweep that is only actionable once the top-up is confirmed", async () => {
    const t = await tradeWithDeposit("PAYMENT_CONFIRMED", 100_000_000n);
    await transfers.planOnce();
    const [topup, sweep] = await orders(t.id);
    expect(topup).toMatchObject({ kind: "GAS_TOPUP", fromAddress: HOT, toAddress: t.depositAddress, contract: USDT, amount: 0n });
    expect(sweep).toMatchObject({ kind: "SWEEP", fromAddress: t.depositAddress, toAddress: HOT, amount: 100_000_000n, dependsOn: topup!.id });
    // 5 % of R$ 540 in ETH at R$ 15000: 0.0018 ETH
    expect(sweep!.maxFee).toBe(1_800_000_000_000_000n);
    const ids = async () => (await transfers.actionable("anvil")).map((o) => o.id);
    expect(await ids()).toContain(topup!.id);
    expect(await ids()).not.toContain(sweep!.id);
    await report(topup!.id, "SIGNED");
    await report(topup!.id, "BROADCAST");
    expect(await ids()).not.toContain(sweep!.id);
    await report(topup!.id, "CONFIRMED");
    expect(await ids()).toContain(sweep!.id);
    await transfers.planOnce();
    expect(await orders(t.id)).toHaveLength(2);
  });

  it("records the signed transaction before broadcast; reports are idempotent and a final status sticks", async () => {
    const t = await tradeWithDeposit("COMPLETED", 5n * 10n ** 16n, { native: true });
    await transfers.planOnce();
    const [sweep] = await orders(t.id);
    expect(sweep).toMatchObject({ kind: "SWEEP", deductFee: true, dependsOn: null });
    await report(sweep!.id, "SIGNED");
    const [a] = await db.sql`SELECT raw_tx, nonce, status FROM transfer_attempts WHERE order_id = ${sweep!.id}`;
    expect(a).toMatchObject({ raw_tx: "0xraw", nonce: "7", status: "SIGNED" });
    await report(sweep!.id, "CONFIRMED");
    await report(sweep!.id, "SIGNED");
    await report(sweep!.id, "FAILED");
    const [after] = await orders(t.id);
    expect(after).toMatchObject({ status: "CONFIRMED", confirmedTxHash: `0xtx${sweep!.id}1` });
  });
});

describe("refunds", () => {
  it("UNDERPAID → REFUND_PENDING → a refund from the deposit address → REFUNDED when confirmed", async () => {
    const t = await tradeWithDeposit("UNDERPAID", 40_000_000n);
    await transfers.planOnce();
    expect(await statusOf(t.id)).toBe("REFUND_PENDING");
    const list = await orders(t.id);
    const refund = list.find((o) => o.kind === "REFUND")!;
    expect(refund).toMatchObject({ fromAddress: t.depositAddress, toAddress: "0x8ba1f109551bd432803012645ac136ddd64dba72", amount: 40_000_000n });
    expect(list.find((o) => o.kind === "GAS_TOPUP")).toBeDefined();
    await report(refund.dependsOn!, "CONFIRMED");
    await report(refund.id, "CONFIRMED");
    expect(await statusOf(t.id)).toBe("REFUNDED");
  });

  it("a late deposit to an expired trade is refunded; a failed refund goes to MANUAL_REVIEW", async () => {
    const t = await tradeWithDeposit("EXPIRED", 2n * 10n ** 16n, { native: true });
    await transfers.planOnce();
    expect(await statusOf(t.id)).toBe("REFUND_PENDING");
    const [refund] = await orders(t.id);
    expect(refund).toMatchObject({ kind: "REFUND", deductFee: true, amount: 2n * 10n ** 16n });
    await report(refund!.id, "FAILED", 1, "reverted");
    expect(await statusOf(t.id)).toBe("MANUAL_REVIEW");
  });

  it("after a sweep left the deposit address, the refund comes from the hot wallet", async () => {
    const t = await tradeWithDeposit("PAYOUT_PENDING", 3n * 10n ** 16n, { native: true });
    await transfers.planOnce();
    const [sweep] = await orders(t.id);
    await report(sweep!.id, "BROADCAST");
    await db.sql`UPDATE instant_trades SET status = 'REFUND_PENDING' WHERE id = ${t.id}`;
    await transfers.planOnce();
    const refund = (await orders(t.id)).find((o) => o.kind === "REFUND")!;
    expect(refund).toMatchObject({ fromAddress: HOT, amount: 3n * 10n ** 16n });
  });

  it("a sweep not yet signed is superseded by the refund", async () => {
    const t = await tradeWithDeposit("PAYMENT_CONFIRMED", 20_000_000n);
    await transfers.planOnce();
    await db.sql`UPDATE instant_trades SET status = 'REFUND_PENDING' WHERE id = ${t.id}`;
    await transfers.planOnce();
    const list = await orders(t.id);
    expect(list.filter((o) => o.kind === "SWEEP").map((o) => o.status)).toEqual(["SKIPPED"]);
    expect(list.find((o) => o.kind === "REFUND")).toMatchObject({ fromAddress: t.depositAddress, status: "PENDING" });
  });
});

