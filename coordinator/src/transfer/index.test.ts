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
    options: { sweepMaxFeeBps: 500n, maxSweepOrders: 3, intervalMs: 1000, batchSize: 50, rebalanceMarginBps: 1000n },
  });
  await transfers.registerWallets("anvil", [{ kind: "hot", address: HOT, derivationPath: "m/44'/60'/1'/0/0", keyRef: "vault:secret/x#seed", ceiling: null }]);
});
afterAll(async () => {
  await db.close();
});

/** A trade at `status` with one confirmed deposit of `amount` of its asset. */
async function tradeWithDeposit(status: NonNullable<Parameters<typeof insertTrade>[1]>["status"], amount: bigint, opts: { native?: boolean; refund?: string } = {}) {
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


/** Another confirmed deposit of the trade's asset to its deposit address. */
async function addDeposit(t: { id: string; depositAddress: string }, amount: bigint, native = false): Promise<string> {
  const ref = `0x${t.id}:${Math.floor(Math.random() * 1e9)}`;
  await db.sql`INSERT INTO deposits (network, tx_ref, tx_hash, address, contract, amount, trade_id, status, block_height, late)
               VALUES ('anvil', ${ref}, ${ref.split(":")[0]!}, ${t.depositAddress}, ${native ? "" : USDT}, ${amount.toString()}, ${t.id},
                       'CONFIRMED', 20, true)`;
  return ref;
}

describe("what a trade did not pay for", () => {
  it("refunds an over-payment's excess from the hot wallet once the sweep is final, and not again", async () => {
    // 130 USDT confirmed for a 100 USDT quote: the payout covers 100.
    const t = await tradeWithDeposit("PAYOUT_PENDING", 130_000_000n);
    await db.sql`UPDATE instant_trades SET paid_amount = 100000000 WHERE id = ${t.id}`;
    await transfers.planOnce();
    const list = await orders(t.id);
    const sweep = list.find((o) => o.kind === "SWEEP")!;
    const excess = list.find((o) => o.kind === "REFUND")!;
    expect(sweep.amount).toBe(130_000_000n);
    expect(excess).toMatchObject({
      purpose: "excess", fromAddress: HOT, toAddress: "0x8ba1f109551bd432803012645ac136ddd64dba72", amount: 30_000_000n,
      contract: USDT, deductFee: false, dependsOn: sweep.id, status: "PENDING",
    });
    const ids = async () => (await transfers.actionable("anvil")).map((o) => o.id);
    expect(await ids()).not.toContain(excess.id);
    await report(sweep.dependsOn!, "CONFIRMED");
    await report(sweep.id, "CONFIRMED");
    expect(await ids()).toContain(excess.id);
    await report(excess.id, "CONFIRMED");
    await transfers.planOnce();
    expect((await orders(t.id)).filter((o) => o.kind === "REFUND")).toHaveLength(1);
    // An excess refund never moves the trade: it stays where its payout has it.
    expect(await statusOf(t.id)).toBe("PAYOUT_PENDING");
  });

  it("when the payout then fails, the trade's refund is what is left after the excess", async () => {
    const t = await tradeWithDeposit("PAYOUT_PENDING", 3n * 10n ** 16n, { native: true });
    await db.sql`UPDATE instant_trades SET paid_amount = ${(2n * 10n ** 16n).toString()} WHERE id = ${t.id}`;
    await transfers.planOnce();
    const sweep = (await orders(t.id)).find((o) => o.kind === "SWEEP")!;
    await report(sweep.id, "CONFIRMED");
    await db.sql`UPDATE instant_trades SET status = 'REFUND_PENDING' WHERE id = ${t.id}`;
    await transfers.planOnce();
    const refunds = (await orders(t.id)).filter((o) => o.kind === "REFUND");
    expect(refunds.map((r) => [r.purpose, r.amount, r.fromAddress])).toEqual([
      ["excess", 1n * 10n ** 16n, HOT],
      ["trade", 2n * 10n ** 16n, HOT],
    ]);
    // Only the trade's own refund makes it REFUNDED.
    await report(refunds[0]!.id, "CONFIRMED");
    expect(await statusOf(t.id)).toBe("REFUND_PENDING");
    await report(refunds[1]!.id, "CONFIRMED");
    expect(await statusOf(t.id)).toBe("REFUNDED");
  });

  it("an excess below the asset's minimum is recorded SKIPPED, once, and never sent", async () => {
    // local.json: USDT min_amount 1 (1,000,000 base units); 0.5 USDT over.
    const t = await tradeWithDeposit("COMPLETED", 100_500_000n);
    await db.sql`UPDATE instant_trades SET paid_amount = 100000000 WHERE id = ${t.id}`;
    await transfers.planOnce();
    await transfers.planOnce();
    const refunds = (await orders(t.id)).filter((o) => o.kind === "REFUND");
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ purpose: "excess", status: "SKIPPED", amount: 500_000n });
    expect((await transfers.actionable("anvil")).map((o) => o.id)).not.toContain(refunds[0]!.id);
  });

  it("refunds a deposit that arrives after the trade was REFUNDED, from the deposit address, once", async () => {
    const t = await tradeWithDeposit("UNDERPAID", 2n * 10n ** 16n, { native: true });
    await transfers.planOnce();
    const [first] = await orders(t.id);
    await report(first!.id, "CONFIRMED");
    expect(await statusOf(t.id)).toBe("REFUNDED");
    const late = await addDeposit(t, 5n * 10n ** 16n, true);
    await transfers.planOnce();
    await transfers.planOnce();
    const refunds = (await orders(t.id)).filter((o) => o.kind === "REFUND");
    expect(refunds).toHaveLength(2);
    expect(refunds[1]).toMatchObject({
      purpose: "late_deposit", fromAddress: t.depositAddress, amount: 5n * 10n ** 16n, sourceTxRefs: [late], deductFee: true, status: "PENDING",
    });
    expect(await statusOf(t.id)).toBe("REFUNDED");
    await report(refunds[1]!.id, "CONFIRMED");
    expect(await statusOf(t.id)).toBe("REFUNDED");
  });

  it("refunds a token deposit that arrives after a completed trade's sweep, with a gas top-up first", async () => {
    const t = await tradeWithDeposit("COMPLETED", 100_000_000n);
    await db.sql`UPDATE instant_trades SET paid_amount = 100000000 WHERE id = ${t.id}`;
    await transfers.planOnce();
    expect((await orders(t.id)).map((o) => o.kind)).toEqual(["GAS_TOPUP", "SWEEP"]);
    await addDeposit(t, 7_000_000n);
    await transfers.planOnce();
    const list = await orders(t.id);
    expect(list.map((o) => o.kind)).toEqual(["GAS_TOPUP", "SWEEP", "GAS_TOPUP", "REFUND"]);
    expect(list[3]).toMatchObject({ purpose: "late_deposit", fromAddress: t.depositAddress, amount: 7_000_000n, dependsOn: list[2]!.id });
  });
});

describe("rebalancing the hot wallet to cold", () => {
  const NET = "rebal-net";
  const HOT2 = "0x00000000000000000000000000000000000000f2";
  const COLD = "0x00000000000000000000000000000000000000c0";
  const ETH = 10n ** 18n;
  const rebalances = () => db.sql<{ id: string; amount: string; status: string; to_address: string; deduct_fee: boolean }[]>`
    SELECT id, amount::text, status, to_address, deduct_fee FROM transfer_transactions WHERE network = ${NET} AND kind = 'REBALANCE' ORDER BY created_at`;

  it("moves the native balance above the ceiling to cold, one at a time, and only from a reading after the last one landed", async () => {
    await transfers.registerWallets(NET, [
      { kind: "hot", address: HOT2, derivationPath: "m/44'/60'/1'/0/0", keyRef: "vault:secret/x#seed", ceiling: 10n * ETH },
      { kind: "cold", address: COLD, derivationPath: "", keyRef: "", ceiling: null },
    ]);
    // Within the 10 % margin: nothing.
    await transfers.reportBalances(NET, 100n, [{ address: HOT2, contract: "", balance: 10n * ETH + ETH / 2n }]);
    await transfers.planOnce();
    expect(await rebalances()).toEqual([]);
    await transfers.reportBalances(NET, 101n, [{ address: HOT2, contract: "", balance: 25n * ETH }]);
    // An older reading arriving late never replaces a newer one.
    await transfers.reportBalances(NET, 99n, [{ address: HOT2, contract: "", balance: 90n * ETH }]);
    await transfers.planOnce();
    await transfers.planOnce();
    const [r] = await rebalances();
    expect(r).toMatchObject({ amount: (15n * ETH).toString(), status: "PENDING", to_address: COLD, deduct_fee: true });
    expect(await rebalances()).toHaveLength(1);
    const report2 = (status: "CONFIRMED", blockHeight: bigint) =>
      db.sql.begin((tx) => transfers.report(NET, { orderId: r!.id, status, reason: "", blockHeight, attempt: { attempt: 1, txHash: "0xrb", rawTx: "0x", nonce: "1", fee: "1", status } }, tx));
    await report2("CONFIRMED", 105n);
    // The last reading (block 101) predates the rebalance: no second one from it.
    await transfers.planOnce();
    expect(await rebalances()).toHaveLength(1);
    await transfers.reportBalances(NET, 106n, [{ address: HOT2, contract: "", balance: 10n * ETH }]);
    await transfers.planOnce();
    expect(await rebalances()).toHaveLength(1);
  });
});
