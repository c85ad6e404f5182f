// PIX payouts when the provider misbehaves, and the checks that stop a payout: timeouts and 5xx
// around the create call, webhooks that never come, failed transfers, a key held by someone else,
// limits. Status checks are frequent here (200 ms, 400 ms, then every 800 ms), so a payout left
// without webhooks is finished by polling. Every test counts the transfers the stand-in made.
import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  confirmedTrade,
  coordinatorMetrics,
  counterValue,
  expectPaidOnce,
  newSeller,
  restartCoordinator,
  startPayoutRig,
  tradeStatus,
  transfersForTrade,
  type PayoutRig,
} from "../harness/payouts.js";

let rig: PayoutRig;

beforeAll(async () => {
  rig = await startPayoutRig({ env: { PAYOUT_MAX_BRL: "100.00", STARKBANK_TIMEOUT_MS: "1500" } });
});
afterAll(async () => {
  await rig?.stop();
});

const metric = async (name: string, labels = "") => counterValue(await coordinatorMetrics(rig.s.coordinator), name, labels);

async function payoutOf(tradeId: string) {
  const [p] = await rig.s.sql<{ idempotency_key: string; status: string; checks: number }[]>`
    SELECT idempotency_key, status, checks FROM payouts WHERE trade_id = ${tradeId}`;
  return p;
}

/** The trade ends in `status` having moved no money: no transfer, or only failed ones. */
async function expectNotPaid(tradeId: string, status: string, reason: RegExp) {
  await eventually(async () => expect(await tradeStatus(rig, tradeId)).toBe(status));
  const made = transfersForTrade(await rig.standin.admin.transfers(), tradeId);
  expect(made.filter((t) => t.status !== "failed")).toEqual([]);
  const [last] = await rig.s.sql<{ to_status: string; reason: string; actor: string }[]>`
    SELECT to_status, reason, actor FROM instant_trade_history WHERE trade_id = ${tradeId} ORDER BY version DESC LIMIT 1`;
  expect(last).toMatchObject({ to_status: status, actor: "system:payouts" });
  expect(last!.reason).toMatch(reason);
  return made;
}

describe("ambiguous provider answers are read back under the same key", () => {
  it("a timeout after the provider accepted: UNKNOWN, then found by its key; paid once, created once", async () => {
    await rig.standin.admin.addFault({ kind: "timeout_after_accept", delayMs: 3_000 });
    const unknown = await metric("ponte_payout_status_changes_total", 'status="UNKNOWN"');
    const id = await confirmedTrade(rig, await newSeller(rig));
    const summary = await expectPaidOnce(rig, [id]);
    const p = await payoutOf(id);
    expect(summary.byExternalId[p!.idempotency_key]).toMatchObject({ transfers: 1, createAttempts: 1 });
    expect(await metric("ponte_payout_status_changes_total", 'status="UNKNOWN"')).toBe(unknown + 1);
  });

  it("a 5xx before the provider accepted: nothing there under the key, so sent again under the same key", async () => {
    await rig.standin.admin.addFault({ kind: "http500", route: "create" });
    const id = await confirmedTrade(rig, await newSeller(rig));
    const summary = await expectPaidOnce(rig, [id]);
    const p = await payoutOf(id);
    // Two POSTs, one key, one transfer.
    expect(summary.byExternalId[p!.idempotency_key]).toMatchObject({ transfers: 1, createAttempts: 2 });
  });

  it("a 5xx after the provider accepted: found by its key, never sent again", async () => {
    await rig.standin.admin.addFault({ kind: "http500_after_accept" });
    const id = await confirmedTrade(rig, await newSeller(rig));
    const summary = await expectPaidOnce(rig, [id]);
    const p = await payoutOf(id);
    expect(summary.byExternalId[p!.idempotency_key]).toMatchObject({ transfers: 1, createAttempts: 1 });
  });

  it("webhooks never sent: polling the provider completes the payouts", async () => {
    await rig.standin.admin.addFault({ kind: "drop_webhook", count: 9 });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await confirmedTrade(rig, await newSeller(rig)));
    const summary = await expectPaidOnce(rig, ids);
    const events = await rig.standin.admin.events();
    for (const id of ids) {
      const [t] = transfersForTrade(summary, id);
      expect(events.filter((e) => e.transferId === t!.id).map((e) => [e.type, e.state])).toEqual([
        ["created", "dropped"],
        ["processing", "dropped"],
        ["success", "dropped"],
      ]);
    }
  });

  it("the provider's reads failing for a while: the payout waits on its schedule and completes", async () => {
    await rig.standin.admin.addFault({ kind: "drop_webhook", count: 3 });
    await rig.standin.admin.addFault({ kind: "http500", route: "list", count: 3 });
    const id = await confirmedTrade(rig, await newSeller(rig));
    await expectPaidOnce(rig, [id]);
    expect((await rig.standin.admin.faults()).find((f) => f.kind === "http500" && f.route === "list")).toMatchObject({ fired: 3 });
  });
});

describe("a payout that must not (or could not) be made: MANUAL_REVIEW by default, nothing paid", () => {
  it("the transfer fails at the receiving bank", async () => {
    const reviews = await metric("ponte_payout_reviews_total");
    const id = await confirmedTrade(rig, await newSeller(rig, { dict: "failing" }));
    const made = await expectNotPaid(id, "MANUAL_REVIEW", /^payout failed/);
    expect(made).toHaveLength(1);
    expect((await payoutOf(id))!.status).toBe("FAILED");
    expect(await metric("ponte_payout_reviews_total")).toBe(reviews + 1);
  });

  it("a late failure, after the transfer was processing", async () => {
    await rig.standin.admin.addFault({ kind: "late_failure", delayMs: 100 });
    const id = await confirmedTrade(rig, await newSeller(rig));
    const made = await expectNotPaid(id, "MANUAL_REVIEW", /^payout failed/);
    expect(made.map((t) => t.status)).toEqual(["failed"]);
  });

  it("the provider refuses the transfer (4xx)", async () => {
    await rig.standin.admin.addFault({ kind: "reject", code: "invalidAccountNumber" });
    const id = await confirmedTrade(rig, await newSeller(rig));
    const made = await expectNotPaid(id, "MANUAL_REVIEW", /invalidAccountNumber/);
    expect(made).toHaveLength(0);
    expect((await payoutOf(id))!.status).toBe("FAILED");
  });

  it("the PIX key is held by another CPF: no payout row, no transfer", async () => {
    const id = await confirmedTrade(rig, await newSeller(rig, { dict: "other" }));
    expect(await expectNotPaid(id, "MANUAL_REVIEW", /holder is not the seller/)).toHaveLength(0);
    expect(await payoutOf(id)).toBeUndefined();
  });

  it("the PIX key is not registered at any bank", async () => {
    const id = await confirmedTrade(rig, await newSeller(rig, { dict: "none" }));
    expect(await expectNotPaid(id, "MANUAL_REVIEW", /not registered at any bank/)).toHaveLength(0);
  });

  it("the seller has no PIX key at Ponte", async () => {
    const id = await confirmedTrade(rig, await newSeller(rig, { register: false }));
    expect(await expectNotPaid(id, "MANUAL_REVIEW", /no PIX key/)).toHaveLength(0);
  });

  it("above the per-payout maximum (PAYOUT_MAX_BRL=100.00)", async () => {
    // 30 USDT at 5.40, less 3.25 % → R$ 156.74.
    const id = await confirmedTrade(rig, await newSeller(rig), "30");
    expect(await expectNotPaid(id, "MANUAL_REVIEW", /per-payout maximum/)).toHaveLength(0);
    expect(await payoutOf(id)).toBeUndefined();
  });
});

describe("PAYOUT_FAILURE_POLICY=refund, PAYOUT_REVIEW_AFTER_MS=1000, daily maximum R$ 80, night all day with a R$ 60 cap", () => {
  beforeAll(async () => {
    await restartCoordinator(
      rig,
      {
        PAYOUT_FAILURE_POLICY: "refund",
        PAYOUT_REVIEW_AFTER_MS: "1000",
        PAYOUT_DAILY_MAX_BRL: "80.00",
        PAYOUT_NIGHT_HOURS: "0-24",
        PAYOUT_NIGHT_MAX_BRL: "60.00",
      },
      "SIGTERM",
    );
  });

  it("the seller's daily maximum: the first payout is made, the one that would pass R$ 80 goes to review", async () => {
    const seller = await newSeller(rig);
    const first = await confirmedTrade(rig, seller);
    await expectPaidOnce(rig, [first]);
    const second = await confirmedTrade(rig, seller);
    expect(await expectNotPaid(second, "MANUAL_REVIEW", /daily payout maximum/)).toHaveLength(0);
  });

  it("the night-time cap: R$ 62.69 at night goes to review", async () => {
    // 12 USDT at 5.40, less 3.25 % → R$ 62.69: under the per-payout and daily maximums.
    const id = await confirmedTrade(rig, await newSeller(rig), "12");
    expect(await expectNotPaid(id, "MANUAL_REVIEW", /night-time cap/)).toHaveLength(0);
  });

  it("a failed transfer → REFUND_PENDING, nothing paid", async () => {
    const id = await confirmedTrade(rig, await newSeller(rig, { dict: "failing" }));
    expect(await expectNotPaid(id, "REFUND_PENDING", /^payout failed/)).toHaveLength(1);
  });

  it("a holder mismatch is still a MANUAL_REVIEW (nothing failed at the provider)", async () => {
    const id = await confirmedTrade(rig, await newSeller(rig, { dict: "other" }));
    expect(await expectNotPaid(id, "MANUAL_REVIEW", /holder is not the seller/)).toHaveLength(0);
  });

  it("unsettled past the review age → MANUAL_REVIEW; confirmed again, the same payout is followed, not sent twice", async () => {
    await rig.standin.admin.configure({ autoAdvance: false });
    try {
      const seller = await newSeller(rig);
      const id = await confirmedTrade(rig, seller);
      await eventually(async () => expect(await tradeStatus(rig, id)).toBe("MANUAL_REVIEW"), { timeout: 5_000 });
      const [review] = await rig.s.sql<{ reason: string }[]>`
        SELECT reason FROM instant_trade_history WHERE trade_id = ${id} AND to_status = 'MANUAL_REVIEW'`;
      expect(review!.reason).toMatch(/not settled the payout in time/);
      const [transfer] = transfersForTrade(await rig.standin.admin.transfers(), id);
      expect(transfer).toMatchObject({ status: "created" });

      // The admin decides to keep waiting: the trade follows the payout already made.
      const again = await rig.s.api(`/api/v1/instant-trade/${id}/confirm-payment`, { token: rig.s.adminToken(), body: { reason: "provider says it is processing" } });
      expect(again.status).toBe(200);
      await eventually(async () => expect(await tradeStatus(rig, id)).toBe("PAYOUT_PENDING"));
      await rig.standin.admin.advance(transfer!.id, "success");
      await expectPaidOnce(rig, [id]);
      const rows = await rig.s.sql`SELECT id FROM payouts WHERE trade_id = ${id}`;
      expect(rows).toHaveLength(1);
    } finally {
      await rig.standin.admin.configure({ autoAdvance: true });
    }
  });
});
