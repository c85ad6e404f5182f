// The coordinator SIGKILLed in the middle of a payout (PONTE_CRASH_AT), then restarted without
// the crash point: every trade must end COMPLETED and paid exactly once, counted at the stand-in.
// Status checks are a minute apart here: after a restart, what finishes a payout is its committed
// row (due at once), a stored webhook hint, or the stand-in retrying a webhook the dead process
// never answered.
import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  confirmTrade,
  createTrade,
  expectPaidOnce,
  newSeller,
  restartCoordinator,
  startPayoutRig,
  transfersForTrade,
  type PayoutRig,
} from "../harness/payouts.js";
import type { FaultSpec } from "../standins/starkbank/index.js";

let rig: PayoutRig;

beforeAll(async () => {
  // The first scenario's crash point from the start: one restart fewer.
  rig = await startPayoutRig({ env: { PAYOUT_CHECK_SCHEDULE_MS: "60000", PONTE_CRASH_AT: "payout.before_call" } });
});
afterAll(async () => {
  await rig?.stop();
});

/**
 * Three trades confirmed while the DICT lookups fail (so none is paid yet), then the DICT back:
 * their payouts start together, and the coordinator, running with PONTE_CRASH_AT=point, kills
 * itself on the way.
 */
async function confirmThreeThenCrash(point: string, faults: FaultSpec[] = []): Promise<string[]> {
  // Webhooks of an earlier scenario still being retried would hit this one's crash point.
  await eventually(async () => {
    const busy = (await rig.standin.admin.events()).filter((e) => e.state === "pending" || e.state === "held");
    expect(busy).toEqual([]);
  }, { timeout: 15_000 });
  if (rig.s.coordinatorEnv.PONTE_CRASH_AT !== point) await restartCoordinator(rig, { PONTE_CRASH_AT: point });
  await rig.standin.admin.addFault({ kind: "http500", route: "dict", count: 10_000 });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const id = await createTrade(rig, await newSeller(rig));
    await confirmTrade(rig, id);
    ids.push(id);
  }
  await rig.standin.admin.clearFaults();
  for (const f of faults) await rig.standin.admin.addFault(f);
  const coordinator = rig.s.coordinator;
  await eventually(() => expect(coordinator.exitCode).not.toBeNull(), { timeout: 10_000, message: `no crash at ${point}` });
  return ids;
}

async function state(ids: string[]) {
  const summary = await rig.standin.admin.transfers();
  const rows = await rig.s.sql<{ trade_id: string; trade: string; payout: string | null; key: string | null }[]>`
    SELECT t.id AS trade_id, t.status AS trade, p.status AS payout, p.idempotency_key AS key
      FROM instant_trades t LEFT JOIN payouts p ON p.trade_id = t.id WHERE t.id IN ${rig.s.sql(ids)}`;
  return rows.map((r) => ({ ...r, transfers: transfersForTrade(summary, r.trade_id) }));
}

describe("the coordinator killed mid-payout, then restarted", () => {
  it("before the provider call: the committed payouts are sent after the restart, once each", async () => {
    const ids = await confirmThreeThenCrash("payout.before_call");
    const atCrash = await state(ids);
    // Payout rows and keys are committed before any call, and no call was made. (A trade the
    // worker had not reached yet is still PAYMENT_CONFIRMED, without a payout.)
    expect(atCrash.flatMap((r) => r.transfers)).toEqual([]);
    expect(atCrash.filter((r) => r.payout !== null).length).toBeGreaterThanOrEqual(1);
    for (const r of atCrash) {
      expect([r.trade, r.payout]).toEqual(
        r.payout === null ? ["PAYMENT_CONFIRMED", null] : ["PAYOUT_PENDING", "PENDING"],
      );
    }

    await restartCoordinator(rig, { PONTE_CRASH_AT: undefined });
    const summary = await expectPaidOnce(rig, ids);
    for (const r of atCrash.filter((x) => x.key)) expect(summary.byExternalId[r.key!]).toMatchObject({ transfers: 1, createAttempts: 1 });
  });

  it("between the committed payout and the same turn's provider call: sent after the restart, once each, under its key", async () => {
    const ids = await confirmThreeThenCrash("payout.after_prepare");
    const atCrash = await state(ids);
    expect(atCrash.flatMap((r) => r.transfers)).toEqual([]);
    const prepared = atCrash.filter((r) => r.payout !== null);
    expect(prepared.length).toBeGreaterThanOrEqual(1);
    for (const r of prepared) expect([r.trade, r.payout]).toEqual(["PAYOUT_PENDING", "PENDING"]);

    await restartCoordinator(rig, { PONTE_CRASH_AT: undefined });
    const summary = await expectPaidOnce(rig, ids);
    for (const r of prepared) expect(summary.byExternalId[r.key!]).toMatchObject({ transfers: 1, createAttempts: 1 });
  });

  it("after the call, before its answer was recorded: the repeat under the same key finds the transfer", async () => {
    const ids = await confirmThreeThenCrash("payout.after_call");
    const atCrash = await state(ids);
    // At least one transfer exists at the provider whose payout Ponte still has as unsent.
    const unrecorded = atCrash.filter((r) => r.payout === "PENDING" && r.transfers.length === 1);
    expect(unrecorded.length).toBeGreaterThanOrEqual(1);

    await restartCoordinator(rig, { PONTE_CRASH_AT: undefined });
    const summary = await expectPaidOnce(rig, ids);
    // The repeated create was refused as a duplicate key and resolved to the existing transfer.
    for (const r of unrecorded) expect(summary.byExternalId[r.key!]).toMatchObject({ transfers: 1, createAttempts: 2 });
  });

  it("after the webhook arrived, before the trade was updated: the stored hint (and the provider's retries) finish it", async () => {
    // Only the success webhooks are sent, so the first one to arrive is what kills the coordinator.
    const ids = await confirmThreeThenCrash("webhook.after_ack", [
      { kind: "drop_webhook", eventType: "created", count: 3 },
      { kind: "drop_webhook", eventType: "processing", count: 3 },
    ]);
    const atCrash = await state(ids);
    // A success the coordinator was told about (and stored) but never acted on.
    const hinted = await rig.s.sql<{ our_key: string }[]>`
      SELECT our_key FROM webhook_events WHERE status = 'success' AND handled_at IS NULL`;
    // (Two webhooks handled at the same moment can both be stored before the process dies.)
    const told = atCrash.filter((r) => hinted.some((h) => h.our_key === r.key));
    expect(told.length).toBeGreaterThanOrEqual(1);
    for (const r of told) expect(r).toMatchObject({ trade: "PAYOUT_PENDING", transfers: [expect.objectContaining({ status: "success" })] });

    await restartCoordinator(rig, { PONTE_CRASH_AT: undefined });
    await expectPaidOnce(rig, ids, 20_000);
    // Every stored hint gets answered by a read (the last ones may be a moment behind the trades).
    await eventually(async () => {
      const [left] = await rig.s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events WHERE handled_at IS NULL`;
      expect(left!.n).toBe(0);
    });
  });
});
