// Two coordinator replicas on one database paying 200 trades confirmed at once, and the daily
// reconciliation run by the live system against the stand-in's books.
import { newId } from "@ponte/common";
import { eventually, freePort, type RunningProcess } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  coordinatorMetrics,
  counterValue,
  expectPaidOnce,
  newSeller,
  PROJECT_ID,
  startPayoutRig,
  startReplica,
  type PayoutRig,
  type Seller,
} from "../harness/payouts.js";
import { evmAddresses } from "../harness/stack.js";
import { signedHeaders } from "../standins/starkbank/index.js";

let rig: PayoutRig;
let replica: RunningProcess | undefined;

beforeAll(async () => {
  // RECONCILE_HOUR_UTC=0: the previous day is due for reconciliation at any hour.
  rig = await startPayoutRig({ env: { RECONCILE_HOUR_UTC: "0" }, separateStandin: true });
  replica = await startReplica(rig, await freePort());
});
afterAll(async () => {
  await replica?.kill("SIGTERM");
  await rig?.stop();
});

const USDT_10 = 10_000_000n; // 10 USDT in base units (6 decimals)

/** Trades inserted straight into DEPOSIT_DETECTED with the deposit in full (the API path is slower). */
async function insertDetectedTrades(sellers: Seller[], n: number): Promise<string[]> {
  const addresses = evmAddresses(n);
  const quotes = [];
  const trades = [];
  for (let i = 0; i < n; i++) {
    const seller = sellers[i % sellers.length]!;
    const quoteId = newId("quote");
    const tradeId = newId("trade");
    quotes.push({
      id: quoteId, user_id: seller.userId, network: "anvil", symbol: "USDT", decimals: 6, crypto_amount: USDT_10.toString(),
      fiat_amount_centavos: "5224", price: "5.4", spread_bps: 300, network_fee_bps: 25, spread_centavos: "162",
      network_fee_centavos: "13", expires_at: new Date(Date.now() + 60_000), used_by_trade_id: tradeId,
    });
    trades.push({
      id: tradeId, user_id: seller.userId, quote_id: quoteId, status: "DEPOSIT_DETECTED", network: "anvil", symbol: "USDT",
      decimals: 6, contract: "", crypto_amount: USDT_10.toString(), fiat_amount_centavos: "5224", price: "5.4", spread_bps: 300,
      network_fee_bps: 25, deposit_address: addresses[i]!, received_amount: USDT_10.toString(), confirmed_amount: USDT_10.toString(),
      expires_at: new Date(Date.now() + 1_800_000), monitoring_until: new Date(Date.now() + 90_000_000),
    });
  }
  await rig.s.sql`INSERT INTO quotes ${rig.s.sql(quotes)}`;
  await rig.s.sql`INSERT INTO instant_trades ${rig.s.sql(trades)}`;
  return trades.map((t) => t.id);
}

/** Runs fn over items, at most `width` at a time. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe("two coordinator replicas", () => {
  it("200 trades confirmed at once: exactly 200 payouts at the stand-in, none twice, all COMPLETED", async () => {
    const sellers = await Promise.all(Array.from({ length: 20 }, () => newSeller(rig, { prefix: "r" })));
    const ids = await insertDetectedTrades(sellers, 200);
    const before = (await rig.standin.admin.transfers()).totals.count;

    // Real DEPOSIT_DETECTED → PAYMENT_CONFIRMED transitions, through the gateway, all at once.
    const admin = rig.s.adminToken();
    await inParallel(ids, 10, async (id) => {
      for (;;) {
        const r = await rig.s.api(`/api/v1/instant-trade/${id}/confirm-payment`, { token: admin, body: { reason: "load test" } });
        if (r.status === 200) return;
        // The gateway's deadline can pass on a loaded machine; the admin asks again, and a
        // confirmation that did land answers 409 (the trade has moved on).
        if (r.status === 409) {
          const [t] = await rig.s.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${id}`;
          expect(t!.status).not.toBe("DEPOSIT_DETECTED");
          return;
        }
        expect(r.status).toBe(503);
      }
    });

    // Seconds on an idle machine; the margin is for a loaded CI box.
    const summary = await expectPaidOnce(rig, ids, 90_000);
    expect(summary.totals.count - before).toBe(200);
    const keys = await rig.s.sql<{ idempotency_key: string }[]>`SELECT idempotency_key FROM payouts WHERE trade_id IN ${rig.s.sql(ids)}`;
    expect(keys).toHaveLength(200);
    // Not even a second POST for any of them.
    expect(keys.filter((k) => summary.byExternalId[k.idempotency_key]?.createAttempts !== 1)).toEqual([]);
    // R$ 52.24 each: 10 USDT at 5.40 less 3 % spread and 0.25 % fee, floored.
    const ours = summary.transfers.filter((t) => ids.some((id) => t.tags.includes(id)));
    expect(ours.reduce((a, t) => a + t.amount, 0)).toBe(200 * 5224);

    // Both replicas did part of the work.
    const created = (p: RunningProcess) => p.lines.filter((l) => l.includes("Stark Bank transfer created")).length;
    expect(created(rig.s.coordinator)).toBeGreaterThan(0);
    expect(created(replica!)).toBeGreaterThan(0);
    expect(created(rig.s.coordinator) + created(replica!)).toBe(200);
  }, 150_000);
});

describe("daily reconciliation (run by the live system)", () => {
  it("reports a transfer made outside Ponte, an amount that differs and a payout the provider does not have", async () => {
    const yesterday = new Date(Date.now() - 86_400_000);
    yesterday.setUTCHours(12, 0, 0, 0);
    const day = yesterday.toISOString().slice(0, 10);
    const paid = await rig.s.sql<{ trade_id: string; idempotency_key: string; provider_id: string; amount_centavos: bigint }[]>`
      SELECT trade_id, idempotency_key, provider_id, amount_centavos FROM payouts WHERE status = 'SETTLED' ORDER BY created_at LIMIT 3`;
    expect(paid).toHaveLength(3);
    const [amountOff, clean, notAtProvider] = [paid[0]!, paid[1]!, paid[2]!];

    // Someone pays from the same Stark Bank account without Ponte.
    const seller = await newSeller(rig, { prefix: "x" });
    const holder = (await rig.standin.admin.transfers()).transfers.find((t) => t.externalId === clean.idempotency_key)!;
    const body = JSON.stringify({
      transfers: [{
        amount: 777, name: seller.name, taxId: seller.cpf, bankCode: holder.bankCode, branchCode: holder.branchCode,
        accountNumber: holder.accountNumber, externalId: `outside-${Date.now()}`,
      }],
    });
    const res = await fetch(`${rig.standin.url}/v2/transfer`, {
      method: "POST",
      headers: { ...signedHeaders(`project/${PROJECT_ID}`, rig.project.privateKey, body), "Content-Type": "application/json" },
      body,
    });
    expect(res.status).toBe(200);
    const outside = ((await res.json()) as { transfers: { id: string }[] }).transfers[0]!;

    // Yesterday's books: two of ours and the outside one at the provider; three of ours here,
    // one with another amount, one the provider has on another day.
    for (const id of [amountOff.provider_id, clean.provider_id, outside.id]) await rig.standin.admin.backdate(id, yesterday.toISOString());
    await rig.s.sql`UPDATE payouts SET submitted_at = ${yesterday} WHERE idempotency_key IN ${rig.s.sql([amountOff.idempotency_key, clean.idempotency_key, notAtProvider.idempotency_key])}`;
    await rig.s.sql`UPDATE payouts SET amount_centavos = amount_centavos + 100 WHERE idempotency_key = ${amountOff.idempotency_key}`;

    const mismatches = async (kind: string) =>
      counterValue(await coordinatorMetrics(rig.s.coordinator), "ponte_payout_reconciliation_mismatches_total", `kind="${kind}"`) +
      counterValue(await coordinatorMetrics(replica!), "ponte_payout_reconciliation_mismatches_total", `kind="${kind}"`);
    const before = { local: await mismatches("missing_local"), amount: await mismatches("amount"), remote: await mismatches("missing_remote") };

    // The day was reconciled when the replicas started; forgetting that run makes one of them do it again.
    const [done] = await rig.s.sql<{ mismatches: number }[]>`SELECT mismatches FROM reconciliation_runs WHERE day = ${day}::date`;
    expect(done).toMatchObject({ mismatches: 0 });
    await rig.s.sql`DELETE FROM reconciliation_runs WHERE day = ${day}::date`;
    await eventually(async () => {
      const [run] = await rig.s.sql<{ mismatches: number | null; finished_at: Date | null }[]>`
        SELECT mismatches, finished_at FROM reconciliation_runs WHERE day = ${day}::date`;
      expect(run?.finished_at).toBeInstanceOf(Date);
      expect(run!.mismatches).toBe(3);
    });
    expect({ local: await mismatches("missing_local"), amount: await mismatches("amount"), remote: await mismatches("missing_remote") }).toEqual({
      local: before.local + 1,
      amount: before.amount + 1,
      remote: before.remote + 1,
    });
    const logged = [...rig.s.coordinator.lines, ...replica!.lines].filter((l) => l.includes("Reconciliation mismatch"));
    expect(logged.some((l) => l.includes('"kind":"amount"') && l.includes(amountOff.trade_id))).toBe(true);
    expect(logged.some((l) => l.includes('"kind":"missing_local"') && l.includes(outside.id))).toBe(true);
    expect(logged.some((l) => l.includes('"kind":"missing_remote"') && l.includes(notAtProvider.trade_id))).toBe(true);
  });
});
