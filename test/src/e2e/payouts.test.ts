// PIX payouts end to end through the Stark Bank stand-in, driven by its webhooks: the status
// checks are a minute apart here, so whatever completes within a test was moved by a webhook
// (re-read from the provider). Every test counts the transfers the stand-in made.
import { eventually } from "@ponte/common/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  confirmedTrade,
  coordinatorMetrics,
  counterValue,
  expectPaidOnce,
  newSeller,
  startPayoutRig,
  tradeStatus,
  transfersForTrade,
  type PayoutRig,
} from "../harness/payouts.js";
import { generateKeyPair } from "../standins/starkbank/index.js";
import { sign } from "node:crypto";

let rig: PayoutRig;
const WEBHOOK = "/api/v1/webhooks/pix/starkbank";

beforeAll(async () => {
  rig = await startPayoutRig({ env: { PAYOUT_CHECK_SCHEDULE_MS: "60000" } });
});
afterAll(async () => {
  await rig?.stop();
});

const metric = async (name: string, labels = "") => counterValue(await coordinatorMetrics(rig.s.coordinator), name, labels);

async function postWebhook(body: string, signature: string) {
  const res = await fetch(rig.s.gatewayUrl + WEBHOOK, {
    method: "POST",
    headers: { "content-type": "application/json", "digital-signature": signature },
    body,
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string }; duplicate?: boolean } };
}

describe("happy path", () => {
  it("confirmed → payout → webhook → COMPLETED, with audit log, payout fields and metrics", async () => {
    const seller = await newSeller(rig);
    const id = await confirmedTrade(rig, seller);
    await expectPaidOnce(rig, [id]);

    const trade = await rig.s.api(`/api/v1/instant-trade/${id}`, { token: seller.token });
    expect(trade.status).toBe(200);
    const [transfer] = transfersForTrade(await rig.standin.admin.transfers(), id);
    expect(trade.body).toMatchObject({
      status: "COMPLETED",
      payout_status: "SETTLED",
      payout_end_to_end_id: transfer!.metadata.authentication,
      payout_amount: trade.body.fiat_amount,
    });
    expect(trade.body.payout_end_to_end_id).toMatch(/^E18236120\d{12}\w{11}$/);
    // Paid to the seller's account, under the seller's full CPF.
    expect(transfer).toMatchObject({ taxId: seller.cpf, name: seller.name, bankCode: "18236120" });

    const audit = await rig.s.api(`/api/v1/instant-trade/${id}/audit-log`, { token: seller.token });
    expect(audit.status).toBe(200);
    expect(audit.body.entries.map((e: { to_status: string }) => e.to_status)).toEqual([
      "PENDING",
      "PAYMENT_CONFIRMED",
      "PAYOUT_PENDING",
      "COMPLETED",
    ]);
    expect(audit.body.entries.at(-1)).toMatchObject({ actor: "system:payouts", data: { end_to_end_id: transfer!.metadata.authentication } });

    const events = (await rig.standin.admin.events()).filter((e) => e.transferId === transfer!.id);
    expect(events.map((e) => [e.type, e.state])).toEqual([
      ["created", "delivered"],
      ["processing", "delivered"],
      ["success", "delivered"],
    ]);
    expect(await metric("ponte_payout_status_changes_total", 'status="SETTLED"')).toBeGreaterThanOrEqual(1);
    expect(await metric("ponte_payout_latency_seconds_count")).toBeGreaterThanOrEqual(1);
  });
});

describe("webhooks", () => {
  it("the same webhook three times: handled once, the repeats acknowledged as duplicates", async () => {
    await rig.standin.admin.addFault({ kind: "duplicate_webhook", eventType: "success", times: 3 });
    const before = await metric("ponte_payout_webhook_duplicates_total");
    const id = await confirmedTrade(rig, await newSeller(rig));
    await expectPaidOnce(rig, [id]);
    const [transfer] = transfersForTrade(await rig.standin.admin.transfers(), id);
    const successEvent = async () => (await rig.standin.admin.events()).find((e) => e.transferId === transfer!.id && e.type === "success")!;
    await eventually(async () => expect(await successEvent()).toMatchObject({ deliveries: 3 }));
    const success = await successEvent();
    await eventually(async () => expect(await metric("ponte_payout_webhook_duplicates_total")).toBe(before + 2));
    const [row] = await rig.s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events WHERE event_id = ${success.id}`;
    expect(row!.n).toBe(1);
  });

  it("the webhook before the create call returns: the create is not mistaken for an ambiguous one", async () => {
    await rig.standin.admin.addFault({ kind: "webhook_before_response" });
    const unknownBefore = await metric("ponte_payout_status_changes_total", 'status="UNKNOWN"');
    const id = await confirmedTrade(rig, await newSeller(rig));
    await expectPaidOnce(rig, [id]);
    const [transfer] = transfersForTrade(await rig.standin.admin.transfers(), id);
    const created = (await rig.standin.admin.events()).find((e) => e.transferId === transfer!.id && e.type === "created")!;
    // Delivered (answered 2xx) at the first attempt, while the create call was still waiting.
    expect(created).toMatchObject({ state: "delivered", attempts: 1 });
    expect(await metric("ponte_payout_status_changes_total", 'status="UNKNOWN"')).toBe(unknownBefore);
    const summary = await rig.standin.admin.transfers();
    expect(summary.byExternalId[transfer!.externalId!]).toMatchObject({ transfers: 1, createAttempts: 1 });
  });

  it("out-of-order webhooks (processing after success): COMPLETED stays, paid once", async () => {
    await rig.standin.admin.addFault({ kind: "out_of_order_webhook", eventType: "processing", delayMs: 3_000 });
    const id = await confirmedTrade(rig, await newSeller(rig));
    await expectPaidOnce(rig, [id]);
    const [transfer] = transfersForTrade(await rig.standin.admin.transfers(), id);
    await eventually(async () => {
      const evs = (await rig.standin.admin.events()).filter((e) => e.transferId === transfer!.id);
      expect(evs.find((e) => e.type === "processing")).toMatchObject({ state: "delivered" });
    });
    expect(await tradeStatus(rig, id)).toBe("COMPLETED");
    const [p] = await rig.s.sql<{ status: string }[]>`SELECT status FROM payouts WHERE trade_id = ${id}`;
    expect(p!.status).toBe("SETTLED");
    expect(transfersForTrade(await rig.standin.admin.transfers(), id)).toHaveLength(1);
  });

  it("a forged signature, a stale (replayed) event → 401, counted, nothing changes; a repeat in the window is a duplicate", async () => {
    await rig.standin.admin.configure({ autoAdvance: false });
    try {
      const id = await confirmedTrade(rig, await newSeller(rig));
      let transferId = "";
      await eventually(async () => {
        const [t] = transfersForTrade(await rig.standin.admin.transfers(), id);
        expect(t).toBeDefined();
        transferId = t!.id;
        const [p] = await rig.s.sql<{ status: string }[]>`SELECT status FROM payouts WHERE trade_id = ${id}`;
        expect(p!.status).toBe("PROCESSING");
      });
      // A real, correctly signed event, captured but not delivered.
      await rig.standin.admin.advance(transferId, "processing");
      await rig.standin.admin.advance(transferId, "success");
      const snapshot = async () => ({
        trade: await tradeStatus(rig, id),
        payout: (await rig.s.sql<{ status: string }[]>`SELECT status FROM payouts WHERE trade_id = ${id}`)[0]!.status,
        events: (await rig.s.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events`)[0]!.n,
      });
      // Wait for the success webhook to be handled, then make sure nothing else moves it.
      await eventually(async () => expect(await tradeStatus(rig, id)).toBe("COMPLETED"));
      const before = await snapshot();
      const rejected = {
        bad: await metric("ponte_payout_webhook_rejected_total", 'reason="WEBHOOK_SIGNATURE_INVALID"'),
        stale: await metric("ponte_payout_webhook_rejected_total", 'reason="WEBHOOK_STALE"'),
      };

      const fresh = await rig.standin.admin.emitEvent({ transferId, type: "success", deliver: false });
      // Forged: the body signed by a key that is not Stark Bank's.
      const forger = generateKeyPair();
      const forgedSig = sign("sha256", Buffer.from(fresh.body), { key: forger.privateKey, dsaEncoding: "der" }).toString("base64");
      expect(await postWebhook(fresh.body, forgedSig)).toMatchObject({ status: 401, body: { error: { code: "WEBHOOK_SIGNATURE_INVALID" } } });
      // Tampered: Stark Bank's signature over another body.
      const tampered = fresh.body.replace(/"amount":\d+/, '"amount":1');
      expect(await postWebhook(tampered, fresh.signature)).toMatchObject({ status: 401, body: { error: { code: "WEBHOOK_SIGNATURE_INVALID" } } });
      // No signature at all.
      expect((await postWebhook(fresh.body, "")).status).toBe(401);
      // Stale: a genuine event from two hours ago, replayed now.
      const old = await rig.standin.admin.emitEvent({
        transferId,
        type: "success",
        created: new Date(Date.now() - 2 * 3_600_000).toISOString(),
        deliver: false,
      });
      expect(await postWebhook(old.body, old.signature)).toMatchObject({ status: 401, body: { error: { code: "WEBHOOK_STALE" } } });

      expect(await metric("ponte_payout_webhook_rejected_total", 'reason="WEBHOOK_SIGNATURE_INVALID"')).toBe(rejected.bad + 3);
      expect(await metric("ponte_payout_webhook_rejected_total", 'reason="WEBHOOK_STALE"')).toBe(rejected.stale + 1);
      expect(await snapshot()).toEqual(before);

      // A genuine event delivered twice within the window: the second is acknowledged as a duplicate.
      const delivered = (await rig.standin.admin.events()).find((e) => e.transferId === transferId && e.type === "success" && e.state === "delivered")!;
      expect(await postWebhook(delivered.body, delivered.signature)).toMatchObject({ status: 200, body: { duplicate: true } });
      expect(await snapshot()).toEqual(before);
      expect(transfersForTrade(await rig.standin.admin.transfers(), id)).toHaveLength(1);
    } finally {
      await rig.standin.admin.configure({ autoAdvance: true });
    }
  });
});

describe("returns", () => {
  it("a payout returned after success → RETURNED, counted and alerted; the trade stays COMPLETED", async () => {
    await rig.standin.admin.addFault({ kind: "return", delayMs: 300 });
    const before = await metric("ponte_payout_returned_total");
    const seller = await newSeller(rig);
    const id = await confirmedTrade(rig, seller);
    await eventually(async () => {
      const [p] = await rig.s.sql<{ status: string; returned_at: Date | null }[]>`SELECT status, returned_at FROM payouts WHERE trade_id = ${id}`;
      expect(p).toMatchObject({ status: "RETURNED" });
      expect(p!.returned_at).not.toBeNull();
    });
    expect(await tradeStatus(rig, id)).toBe("COMPLETED");
    expect(await metric("ponte_payout_returned_total")).toBe(before + 1);
    const trade = await rig.s.api(`/api/v1/instant-trade/${id}`, { token: seller.token });
    expect(trade.body.payout_status).toBe("RETURNED");
    const s = await rig.standin.admin.transfers();
    expect(transfersForTrade(s, id).map((t) => t.id)).toHaveLength(1);
    expect(s.byExternalId[transfersForTrade(s, id)[0]!.externalId!]).toMatchObject({ transfers: 1, status: "returned" });
    expect(rig.s.coordinator.lines.some((l) => l.includes("was returned") && l.includes(id))).toBe(true);
  });
});
