import { crashPoint, delay, formatBrl, mask, newId, PonteError, type Logger, type Tolerance } from "@ponte/common";
import type { Sql, Tx } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { systemActor } from "../trade/actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "../trade/model.js";
import { transition, type TransitionContext } from "../trade/transition.js";
import { payoutAmount } from "./amount.js";
import {
  matchesMaskedTaxId,
  ProviderAmbiguousError,
  ProviderRejectedError,
  type KeyOwner,
  type PixProvider,
  type ProviderPayout,
} from "./provider/index.js";

export interface PayoutOptions {
  maxCentavos: bigint;
  dailyMaxCentavos: bigint;
  nightMaxCentavos: bigint;
  /** Night hours in the desk's time zone, [start, end), e.g. 20 → 6 (the PIX night-time rule). */
  nightStartHour: number;
  nightEndHour: number;
  timeZone: string;
  /** What a definitive payout failure does to the trade. */
  failurePolicy: "refund" | "manual_review";
  /** Waits between status checks of a submitted payout: 30 s, 2 min, 10 min, 30 min, then the last, forever. */
  checkScheduleMs: number[];
  /** A payout still unsettled this long after submission sends its trade to MANUAL_REVIEW. */
  reviewAfterMs: number;
  intervalMs: number;
  batchSize: number;
  /** Payouts submitted in parallel by one replica (each holds its own row lock). */
  concurrency: number;
  /** The daily reconciliation of the previous UTC day runs after this UTC hour. */
  reconcileHourUtc: number;
}

type PayoutStatus = "PENDING" | "UNKNOWN" | "PROCESSING" | "SETTLED" | "FAILED" | "RETURNED";

interface PayoutRow {
  id: string;
  trade_id: string;
  user_id: string;
  idempotency_key: string;
  status: PayoutStatus;
  amount_centavos: bigint;
  pix_key: string;
  holder_document: string;
  holder_name: string;
  key_owner: KeyOwner;
  checks: number;
  submitted_at: Date | null;
  /** Submitted longer ago than reviewAfterMs, and the trade has waited that long too. */
  overdue: boolean;
  /** The database's time when the row was claimed: webhooks received before it are answered by this pass. */
  claimed_at: Date;
}

const LIVE = ["PENDING", "UNKNOWN", "PROCESSING"] as const;

export type Payouts = ReturnType<typeof createPayouts>;

const actor = systemActor("payouts");

/**
 * The payout state machine (DESIGN.md §5). A payout row and its idempotency key are committed
 * before any call to the provider; every call for a payout is made while holding its row lock
 * (FOR UPDATE SKIP LOCKED), so replicas never call for the same payout at once; an ambiguous
 * outcome is resolved by reading the payout under the same key, and a new key is only ever made
 * after a confirmed failure (by an admin sending the trade back to PAYMENT_CONFIRMED).
 *
 *   PENDING ──create──▶ PROCESSING ──success──▶ SETTLED (trade COMPLETED) ──return──▶ RETURNED
 *      │  ╲ambiguous▶ UNKNOWN ──read: found──▶ (as the provider says)
 *      │                  └──read: none──▶ PENDING (sent again under the same key)
 *      └─rejected / failed──▶ FAILED (trade REFUND_PENDING or MANUAL_REVIEW)
 *
 * Webhooks are hints only: a verified event is stored (de-duplicated by its id) and the payout it
 * names is re-read from the provider by a worker, ahead of the schedule. The webhook path itself
 * never touches a payout row, so it never waits on a worker that is mid-call to the provider.
 */
export function createPayouts(common: {
  sql: Sql;
  logger: Logger;
  metrics: CoordinatorMetrics;
  provider: PixProvider;
  transitions: TransitionContext;
  tolerance: Tolerance;
  options: PayoutOptions;
}) {
  const { sql, provider, metrics, options: o } = common;
  const logger = common.logger.child({ component: "payouts", provider: provider.name });
  const ac = new AbortController();
  let loops: Promise<void>[] = [];
  let unlisten: (() => Promise<void>) | undefined;

  const nextCheck = (checks: number): number => o.checkScheduleMs[Math.min(checks, o.checkScheduleMs.length - 1)]!;
  const reviewAfterSecs = o.reviewAfterMs / 1000;

  // Built once: constructing an Intl formatter per payout is measurably slow.
  const hourFormat = new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: o.timeZone });
  function isNight(now = new Date()): boolean {
    const hour = Number(hourFormat.format(now));
    return o.nightStartHour > o.nightEndHour
      ? hour >= o.nightStartHour || hour < o.nightEndHour
      : hour >= o.nightStartHour && hour < o.nightEndHour;
  }

  async function review(tx: Tx, trade: Trade, reason: string, data: Record<string, string> = {}): Promise<void> {
    await transition(tx, common.transitions, { tradeId: trade.id, from: trade.status, to: "MANUAL_REVIEW", actor, reason, data });
    metrics.payoutReviews.inc({ reason: data.check ?? "other" });
    logger.warn({ trade_id: trade.id, reason }, "Trade needs manual review");
  }

  /**
   * A trade back in PAYMENT_CONFIRMED (an admin's decision after review) whose payout is not
   * known to have failed: follow that payout rather than send a second one under a new key.
   */
  async function resumeExisting(tx: Tx, trade: Trade, p: { id: string; status: PayoutStatus }): Promise<void> {
    const toPending = (reason: string) =>
      transition(tx, common.transitions, { tradeId: trade.id, from: "PAYMENT_CONFIRMED", to: "PAYOUT_PENDING", actor, reason, data: { payout_id: p.id } });
    if (p.status === "SETTLED") {
      await toPending("payout already made");
      await transition(tx, common.transitions, {
        tradeId: trade.id, from: "PAYOUT_PENDING", to: "COMPLETED", actor, reason: "PIX settled earlier", data: { payout_id: p.id },
      });
      logger.info({ trade_id: trade.id, payout_id: p.id }, "Trade confirmed again after its payout settled; completed without paying again");
    } else if (p.status === "RETURNED") {
      await review(tx, trade, "the earlier payout was returned; complete or refund the trade by hand", { check: "payout_returned", payout_id: p.id });
    } else {
      await toPending("payout already in flight; following it");
      // Skip-locked: a worker holding the row is asking the provider about it right now anyway.
      await tx`UPDATE payouts SET next_check_at = now() WHERE id IN (
                 SELECT id FROM payouts WHERE id = ${p.id} FOR UPDATE SKIP LOCKED)`;
      logger.info({ trade_id: trade.id, payout_id: p.id }, "Trade confirmed again; following its payout in flight");
    }
  }

  /** Trades whose preparation failed (the DICT unreachable for their key): not tried again before the time given. */
  const retryAt = new Map<string, number>();
  function backedOff(): string[] {
    const now = Date.now();
    for (const [id, at] of retryAt) if (at <= now) retryAt.delete(id);
    return [...retryAt.keys()];
  }

  /**
   * PAYMENT_CONFIRMED → checks → a committed payout row (PAYOUT_PENDING), or MANUAL_REVIEW.
   * Returns the new payout's id once its row and key are committed. A trade that cannot be
   * prepared (the DICT unreachable for its key) waits intervalMs, so it does not hold up the others.
   */
  async function prepareOne(): Promise<"none" | "done" | "failed" | { payoutId: string }> {
    let tradeId: string | undefined;
    try {
      return await sql.begin(async (tx) => {
        const [row] = await tx<(TradeRow & { bank_pix_key: string | null })[]>`
          SELECT t.*, b.pix_key AS bank_pix_key FROM instant_trades t LEFT JOIN user_bank_data b ON b.user_id = t.user_id
           WHERE t.status = 'PAYMENT_CONFIRMED' AND t.id <> ALL(${backedOff()}::text[])
           ORDER BY t.updated_at LIMIT 1 FOR UPDATE OF t SKIP LOCKED`;
        if (!row) return "none";
        claimedOne();
        const trade = tradeFromRow(row);
        tradeId = trade.id;
        // The DICT lookup (an HTTP call) runs while the rows below are read. Its answer is only
        // used for the key the locked bank row holds, and only after every check has passed.
        const early = row.bank_pix_key === null ? undefined : settled(provider.resolveKey(row.bank_pix_key));
        // One round trip. Pipelined statements run in order, so the seller's bank row is locked
        // before the day's total is read: that lock serialises payouts per seller across replicas,
        // and the daily maximum below is checked against every payout already committed.
        const [[existing], [bank], [today]] = await Promise.all([
          tx<{ id: string; status: PayoutStatus }[]>`
            SELECT id, status FROM payouts WHERE trade_id = ${trade.id} AND status <> 'FAILED'`,
          tx<{ key_type: string; pix_key: string; holder_document: string; holder_name: string }[]>`
            SELECT key_type, pix_key, holder_document, holder_name FROM user_bank_data WHERE user_id = ${trade.userId} FOR UPDATE`,
          tx<{ total: string }[]>`
            SELECT COALESCE(sum(amount_centavos), 0)::text AS total FROM payouts
             WHERE user_id = ${trade.userId} AND status <> 'FAILED' AND created_at >= date_trunc('day', now())`,
        ]);
        if (existing) {
          await resumeExisting(tx, trade, existing);
          return "done";
        }
        if (!bank) {
          await review(tx, trade, "the seller has no PIX key registered", { check: "no_pix_key" });
          return "done";
        }
        const amount = payoutAmount(trade, common.tolerance);
        if (amount <= 0n) {
          await review(tx, trade, "nothing to pay", { check: "zero_amount" });
          return "done";
        }
        if (amount > o.maxCentavos) {
          await review(tx, trade, `payout above the per-payout maximum of R$ ${formatBrl(o.maxCentavos)}`, { check: "payout_max", amount: amount.toString() });
          return "done";
        }
        if (BigInt(today!.total) + amount > o.dailyMaxCentavos) {
          await review(tx, trade, "payout above the seller's daily payout maximum", { check: "daily_max", amount: amount.toString() });
          return "done";
        }
        if (isNight() && amount > o.nightMaxCentavos) {
          await review(tx, trade, "payout above the night-time cap", { check: "night_cap", amount: amount.toString() });
          return "done";
        }
        let owner: KeyOwner;
        try {
          // The key changed between the two reads: look up the one now locked.
          owner = await (early && row.bank_pix_key === bank.pix_key ? early : settled(provider.resolveKey(bank.pix_key))).result();
        } catch (err) {
          if (err instanceof PonteError && err.code === "PIX_KEY_NOT_FOUND") {
            await review(tx, trade, "the PIX key is not registered at any bank", { check: "key_not_found" });
            return "done";
          }
          throw err; // unavailable: the trade stays PAYMENT_CONFIRMED and is tried again
        }
        if (!holderMatches(owner, bank.holder_document, bank.holder_name)) {
          await review(tx, trade, "the PIX key's holder is not the seller", { check: "holder_mismatch", key: mask(bank.pix_key) });
          return "done";
        }
        const id = newId("payout");
        const key = id.replace(/^pay_/, "ponte_");
        // Sent together with the transition's statements (pipelined, run in order): a failed
        // INSERT aborts the transaction, and its error is the first to reject.
        await Promise.all([
          tx`INSERT INTO payouts (id, trade_id, user_id, idempotency_key, provider, status, amount_centavos, key_type, pix_key,
                                  holder_document, holder_name, key_owner, bank_code)
             VALUES (${id}, ${trade.id}, ${trade.userId}, ${key}, ${provider.name}, 'PENDING', ${amount.toString()},
                     ${bank.key_type}, ${bank.pix_key}, ${bank.holder_document}, ${bank.holder_name},
                     ${tx.json(owner as never)}, ${owner.ispb})`.execute(),
          transition(tx, common.transitions, {
            tradeId: trade.id,
            from: "PAYMENT_CONFIRMED",
            to: "PAYOUT_PENDING",
            actor,
            reason: "payout created",
            data: { payout_id: id, amount_centavos: amount.toString() },
          }),
        ]);
        metrics.payouts.inc({ status: "PENDING" });
        logger.info({ trade_id: trade.id, payout_id: id, amount_centavos: amount.toString() }, "Payout created");
        return { payoutId: id };
      });
    } catch (err) {
      if (tradeId === undefined) throw err;
      retryAt.set(tradeId, Date.now() + o.intervalMs);
      metrics.workerRuns.inc({ worker: "payout_prepare", result: "error" });
      logger.error({ err, trade_id: tradeId }, "Payout preparation failed; will retry");
      return "failed";
    }
  }

  async function lockedTrade(tx: Tx, tradeId: string): Promise<Trade> {
    const [row] = await tx<TradeRow[]>`SELECT * FROM instant_trades WHERE id = ${tradeId} FOR UPDATE`;
    return tradeFromRow(row!);
  }

  const schedule = (tx: Tx, p: PayoutRow) =>
    tx`UPDATE payouts SET checks = checks + 1, next_check_at = now() + make_interval(secs => ${nextCheck(p.checks) / 1000}),
              updated_at = now() WHERE id = ${p.id}`;

  /** Records what the provider says of a payout, and moves its trade when that is final. */
  async function apply(tx: Tx, p: PayoutRow, r: ProviderPayout): Promise<void> {
    const trade = await lockedTrade(tx, p.trade_id);
    switch (r.status) {
      case "success":
      case "returned": {
        await tx`UPDATE payouts SET status = 'SETTLED', provider_id = ${r.providerId}, provider_status = ${r.providerStatus},
                   end_to_end_id = ${r.endToEndId ?? null}, settled_at = now(), updated_at = now() WHERE id = ${p.id}`;
        metrics.payouts.inc({ status: "SETTLED" });
        // From the payment's confirmation to its settlement, on the database's clock.
        const [lat] = await tx<{ s: number | null }[]>`
          SELECT EXTRACT(EPOCH FROM clock_timestamp() - max(created_at))::float8 AS s FROM instant_trade_history
           WHERE trade_id = ${p.trade_id} AND to_status = 'PAYMENT_CONFIRMED'`;
        if (lat?.s !== null && lat?.s !== undefined) metrics.payoutLatency.observe(lat.s);
        if (trade.status === "PAYOUT_PENDING") {
          await transition(tx, common.transitions, {
            tradeId: trade.id, from: "PAYOUT_PENDING", to: "COMPLETED", actor, reason: "PIX settled",
            data: { payout_id: p.id, end_to_end_id: r.endToEndId ?? "", amount_centavos: p.amount_centavos.toString() },
          });
        } else {
          logger.warn({ trade_id: trade.id, status: trade.status, payout_id: p.id }, "Payout settled while the trade is not awaiting it");
        }
        logger.info({ trade_id: trade.id, payout_id: p.id }, "Payout settled");
        if (r.status === "returned") await recordReturn(tx, p, r);
        return;
      }
      case "failed": {
        await tx`UPDATE payouts SET status = 'FAILED', provider_id = ${r.providerId}, provider_status = ${r.providerStatus},
                   failure_reason = ${r.failureReason ?? "failed"}, updated_at = now() WHERE id = ${p.id}`;
        metrics.payouts.inc({ status: "FAILED" });
        await failTrade(tx, trade, p, r.failureReason ?? "the provider failed the payout");
        return;
      }
      default: {
        if (p.status !== "PROCESSING") metrics.payouts.inc({ status: "PROCESSING" });
        await tx`UPDATE payouts SET status = 'PROCESSING', provider_id = ${r.providerId}, provider_status = ${r.providerStatus}
                   WHERE id = ${p.id}`;
        await schedule(tx, p);
        await escalateIfOverdue(tx, p, trade);
      }
    }
  }

  async function failTrade(tx: Tx, trade: Trade, p: PayoutRow, why: string): Promise<void> {
    logger.error({ trade_id: trade.id, payout_id: p.id, reason: why }, "Payout failed");
    if (trade.status !== "PAYOUT_PENDING") return;
    const to = o.failurePolicy === "refund" ? "REFUND_PENDING" : "MANUAL_REVIEW";
    await transition(tx, common.transitions, {
      tradeId: trade.id, from: trade.status, to, actor, reason: `payout failed: ${why}`, data: { payout_id: p.id },
    });
    if (to === "MANUAL_REVIEW") metrics.payoutReviews.inc({ reason: "payout_failed" });
  }

  async function recordReturn(tx: Tx, p: Pick<PayoutRow, "id" | "trade_id">, r: ProviderPayout): Promise<void> {
    const rows = await tx`UPDATE payouts SET status = 'RETURNED', provider_status = ${r.providerStatus}, returned_at = now(), updated_at = now()
                            WHERE id = ${p.id} AND status = 'SETTLED' RETURNING id`;
    if (rows.length === 0) return;
    metrics.payouts.inc({ status: "RETURNED" });
    metrics.payoutsReturned.inc();
    logger.error({ trade_id: p.trade_id, payout_id: p.id }, "A settled PIX payout was returned (MED or chargeback); the seller was not paid");
  }

  async function escalateIfOverdue(tx: Tx, p: PayoutRow, trade: Trade): Promise<void> {
    if (p.overdue && trade.status === "PAYOUT_PENDING") {
      await review(tx, trade, "the provider has not settled the payout in time", { check: "payout_overdue", payout_id: p.id });
    }
  }

  /** Submits a PENDING payout under its key; anything but a definitive answer leaves it to reads. */
  async function submit(tx: Tx, p: PayoutRow): Promise<void> {
    const log = logger.child({ trade_id: p.trade_id, payout_id: p.id });
    // Rolled back with everything else if the call never happens; the reconciliation day is by it.
    // (A fresh payout's claim has set it already.)
    if (p.submitted_at === null) await tx`UPDATE payouts SET submitted_at = now() WHERE id = ${p.id}`;
    crashPoint("payout.before_call");
    let r: ProviderPayout;
    try {
      r = await provider.createPayout({
        ourKey: p.idempotency_key,
        amountCentavos: BigInt(p.amount_centavos),
        pixKey: p.pix_key,
        keyOwner: p.key_owner,
        holderTaxId: p.holder_document,
        description: `Ponte ${p.trade_id}`,
        tags: [p.trade_id.toLowerCase()],
      });
    } catch (err) {
      if (err instanceof ProviderAmbiguousError) {
        // The payout may exist: from now on only reads under this key decide.
        await tx`UPDATE payouts SET status = 'UNKNOWN' WHERE id = ${p.id}`;
        await schedule(tx, p);
        metrics.payouts.inc({ status: "UNKNOWN" });
        log.warn({ err }, "Payout outcome unknown; will read it back under the same key");
        return;
      }
      if (err instanceof ProviderRejectedError || (err instanceof PonteError && err.code === "HOLDER_DOCUMENT_MISMATCH")) {
        // Definitive, and the adapter checked that no transfer exists under this key.
        await tx`UPDATE payouts SET status = 'FAILED', failure_reason = ${err.message}, updated_at = now() WHERE id = ${p.id}`;
        metrics.payouts.inc({ status: "FAILED" });
        await failTrade(tx, await lockedTrade(tx, p.trade_id), p, err.message);
        return;
      }
      // Nothing was created (our credentials refused, a request we could not build): retry later.
      await schedule(tx, p);
      log.error({ err }, "Payout could not be submitted; will retry under the same key");
      return;
    }
    crashPoint("payout.after_call");
    await apply(tx, p, r);
  }

  /** Where a submitted (or possibly submitted) payout stands, read under its own key. */
  async function check(tx: Tx, p: PayoutRow): Promise<void> {
    const r = await provider.getPayout(p.idempotency_key);
    if (p.status === "SETTLED") {
      // Only a webhook brings a settled payout here: was it returned (or failed after all)?
      if (r && (r.status === "returned" || r.status === "failed")) await recordReturn(tx, p, r);
      return;
    }
    if (r) {
      await apply(tx, p, r);
    } else if (p.status === "UNKNOWN") {
      // Definitively never created: sending again under the same key is safe.
      await tx`UPDATE payouts SET status = 'PENDING', next_check_at = now(), updated_at = now() WHERE id = ${p.id}`;
      logger.info({ trade_id: p.trade_id, payout_id: p.id }, "The provider has no payout under our key; submitting it again under the same key");
    } else {
      await schedule(tx, p);
      logger.error({ trade_id: p.trade_id, payout_id: p.id }, "The provider no longer finds a payout it had accepted");
      await escalateIfOverdue(tx, p, await lockedTrade(tx, p.trade_id));
    }
  }

  const claimColumns = (tx: Tx) => tx`
    p.*, now() AS claimed_at,
    p.submitted_at < now() - make_interval(secs => ${reviewAfterSecs})
      AND (SELECT t.updated_at FROM instant_trades t WHERE t.id = p.trade_id) < now() - make_interval(secs => ${reviewAfterSecs}) AS overdue`;

  /** A payout named by a webhook not yet answered (any status: a settled one may have been returned). */
  async function claimHinted(tx: Tx): Promise<PayoutRow | undefined> {
    const [p] = await tx<PayoutRow[]>`
      SELECT ${claimColumns(tx)} FROM payouts p
       WHERE p.provider = ${provider.name} AND p.idempotency_key IN (
             SELECT w.our_key FROM webhook_events w WHERE w.provider = ${provider.name} AND w.handled_at IS NULL)
       ORDER BY p.next_check_at LIMIT 1 FOR UPDATE OF p SKIP LOCKED`;
    return p;
  }

  async function claimDue(tx: Tx): Promise<PayoutRow | undefined> {
    const [p] = await tx<PayoutRow[]>`
      SELECT ${claimColumns(tx)} FROM payouts p
       WHERE p.status IN ${tx(LIVE)} AND p.next_check_at <= now()
       ORDER BY p.next_check_at LIMIT 1 FOR UPDATE OF p SKIP LOCKED`;
    return p;
  }

  /**
   * A payout just prepared, unless another worker has taken it (or already sent it) meanwhile;
   * marked submitted in the same statement, to save a round trip before the call.
   */
  async function claimFresh(tx: Tx, id: string): Promise<PayoutRow | undefined> {
    const [p] = await tx<PayoutRow[]>`
      UPDATE payouts p SET submitted_at = now()
       WHERE p.id = (SELECT id FROM payouts WHERE id = ${id} AND status = 'PENDING' AND submitted_at IS NULL FOR UPDATE SKIP LOCKED)
      RETURNING ${claimColumns(tx)}`;
    return p;
  }

  /** Webhooks received before the claim are answered by the read made under it. */
  const markHandled = (db: Sql | Tx, p: PayoutRow) =>
    db`UPDATE webhook_events SET handled_at = now()
        WHERE provider = ${provider.name} AND our_key = ${p.idempotency_key} AND handled_at IS NULL AND received_at < ${p.claimed_at}`;

  /**
   * One payout that is due or named by a webhook (or the one given, just prepared): submit it,
   * or ask the provider where it stands.
   */
  async function submitOne(freshId?: string): Promise<boolean> {
    let claimed: PayoutRow | undefined;
    try {
      return await sql.begin(async (tx) => {
        const p = freshId === undefined ? ((await claimHinted(tx)) ?? (await claimDue(tx))) : await claimFresh(tx, freshId);
        if (!p) return false;
        // A fresh payout's worker woke the next one when it claimed the trade.
        if (freshId === undefined) claimedOne();
        claimed = p;
        if (p.status === "PENDING") await submit(tx, p);
        else if (p.status === "UNKNOWN" || p.status === "PROCESSING" || p.status === "SETTLED") await check(tx, p);
        await markHandled(tx, p);
        return true;
      });
    } catch (err) {
      if (!claimed) throw err;
      // The provider unreachable for a read, or anything unexpected: back off on the schedule
      // instead of claiming the same payout again at once (and holding up the others).
      const p = claimed;
      metrics.workerRuns.inc({ worker: "payout_submit", result: "error" });
      logger.error({ err, trade_id: p.trade_id, payout_id: p.id }, "Payout step failed; will retry on its schedule");
      await sql.begin(async (tx) => {
        await tx`UPDATE payouts SET checks = checks + 1, next_check_at = now() + make_interval(secs => ${nextCheck(p.checks) / 1000}),
                   updated_at = now()
                 WHERE id IN (SELECT id FROM payouts WHERE id = ${p.id} AND status IN ${tx(LIVE)} FOR UPDATE SKIP LOCKED)`;
        await markHandled(tx, p);
      });
      return true;
    }
  }

  /**
   * One unit of work. A confirmed trade is prepared and its fresh payout submitted in the same
   * turn: the row and key are committed first, so a crash in between leaves a PENDING payout that
   * any worker submits under that same key. Else one payout that is due or named by a webhook.
   */
  async function step(): Promise<boolean> {
    const prepared = await prepareOne();
    if (typeof prepared === "object") {
      crashPoint("payout.after_prepare");
      await submitOne(prepared.payoutId);
      return true;
    }
    return prepared !== "none" || (await submitOne());
  }

  // Idle workers wait here. News (a NOTIFY on ponte_payouts, the poll) wakes one; a worker that
  // claims work wakes one more at once, before doing it, so a burst spreads over the workers
  // while an idle replica costs one worker's queries per wake-up. (Woken only once the first had
  // finished, the second and third trades of a block waited for the first one's whole payout:
  // bench/README.md, B6.)
  const idle: (() => void)[] = [];
  let news = 0;
  function wake(): void {
    news++;
    idle.shift()?.();
  }
  function claimedOne(): void {
    idle.shift()?.();
  }

  async function worker(): Promise<void> {
    while (!ac.signal.aborted) {
      const seen = news;
      let worked: boolean;
      try {
        worked = await step();
        metrics.workerRuns.inc({ worker: "payouts", result: "ok" });
      } catch (err) {
        metrics.workerRuns.inc({ worker: "payouts", result: "error" });
        logger.error({ err }, "Payout step failed; will retry");
        await delay(o.intervalMs, ac.signal);
        continue;
      }
      // News that came while this step looked is looked at again rather than slept through.
      if (!worked && news === seen && !ac.signal.aborted) await new Promise<void>((resolve) => idle.push(resolve));
    }
  }

  /**
   * Once per provider and UTC day, on whichever replica claims the day first. A claim whose run
   * failed is released; one left by a replica that died is taken over after an hour.
   */
  async function reconcileIfDue(): Promise<void> {
    const now = new Date();
    if (now.getUTCHours() < o.reconcileHourUtc) return;
    const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1));
    const dayText = day.toISOString().slice(0, 10);
    const claimed = await sql`
      INSERT INTO reconciliation_runs (provider, day) VALUES (${provider.name}, ${dayText}::date)
      ON CONFLICT (provider, day) DO UPDATE SET started_at = now()
        WHERE reconciliation_runs.finished_at IS NULL AND reconciliation_runs.started_at < now() - interval '1 hour'
      RETURNING day`;
    if (claimed.length === 0) return;
    let mismatches: number;
    try {
      ({ mismatches } = await self.reconcileDay(day));
    } catch (err) {
      await sql`DELETE FROM reconciliation_runs WHERE provider = ${provider.name} AND day = ${dayText}::date AND finished_at IS NULL`;
      throw err;
    }
    await sql`UPDATE reconciliation_runs SET finished_at = now(), mismatches = ${mismatches}
               WHERE provider = ${provider.name} AND day = ${dayText}::date`;
    logger.info({ day: dayText, mismatches }, "Daily reconciliation finished");
  }

  const self = {
    /** Steps until there is nothing to do or `limit` are done: what the workers of start() do, once. */
    async runOnce(limit = o.batchSize): Promise<number> {
      let n = 0;
      while (n < limit && !ac.signal.aborted && (await step())) n++;
      return n;
    },

    /**
     * A provider webhook, verified on its raw body and de-duplicated by event id. It is only a
     * hint, stored before it is acknowledged: a worker re-reads the payout from the provider
     * before anything is finalised.
     */
    async ingestWebhook(rawBody: string, headers: Record<string, string | string[] | undefined>): Promise<{ duplicate: boolean; eventId: string }> {
      let event;
      try {
        event = await provider.verifyWebhook(rawBody, headers);
      } catch (err) {
        if (err instanceof PonteError && (err.code === "WEBHOOK_SIGNATURE_INVALID" || err.code === "WEBHOOK_STALE")) {
          metrics.webhookRejected.inc({ reason: err.code });
          logger.warn({ code: err.code }, "Webhook refused");
        }
        throw err;
      }
      const ourKey = event.type === "payout" ? event.ourKey : null;
      const status = event.type === "payout" ? event.status : null;
      // A worker re-reads the payout only when the event can tell it something: anything about a
      // payout not yet known to exist (PENDING, UNKNOWN), an outcome for one in flight, a return
      // of one settled. The rest (another "processing", a late copy of an outcome) is recorded as
      // handled; none of it is acted on without a read anyway.
      const inserted = await sql<{ pending: boolean }[]>`
        INSERT INTO webhook_events (provider, event_id, our_key, status, handled_at)
        VALUES (${provider.name}, ${event.eventId}, ${ourKey}, ${status},
                CASE WHEN EXISTS (
                  SELECT 1 FROM payouts WHERE provider = ${provider.name} AND idempotency_key = ${ourKey}::text
                     AND (status IN ('PENDING', 'UNKNOWN')
                          OR (status = 'PROCESSING' AND ${status}::text IN ('success', 'failed', 'returned'))
                          OR (status = 'SETTLED' AND ${status}::text IN ('failed', 'returned'))))
                THEN NULL ELSE now() END)
        ON CONFLICT DO NOTHING RETURNING handled_at IS NULL AS pending`;
      if (inserted.length === 0) {
        metrics.webhookDuplicates.inc();
        return { duplicate: true, eventId: event.eventId };
      }
      if (inserted[0]!.pending) await sql`SELECT pg_notify('ponte_payouts', '')`;
      crashPoint("webhook.after_ack");
      return { duplicate: false, eventId: event.eventId };
    },

    /** Compares one UTC day of the provider's payouts with ours; every mismatch is logged and counted. */
    async reconcileDay(day: Date): Promise<{ mismatches: number }> {
      const from = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()));
      const to = new Date(from.getTime() + 86_400_000);
      const remote = await provider.listPayouts(from, to);
      const local = await sql<{ id: string; idempotency_key: string; amount_centavos: bigint; holder_document: string; status: string; trade_id: string }[]>`
        SELECT id, idempotency_key, amount_centavos, holder_document, status, trade_id FROM payouts
         WHERE provider = ${provider.name} AND submitted_at >= ${from} AND submitted_at < ${to}`;
      const byKey = new Map(local.map((l) => [l.idempotency_key, l]));
      let mismatches = 0;
      const report = (kind: string, fields: Record<string, unknown>) => {
        mismatches++;
        metrics.reconciliationMismatches.inc({ kind });
        logger.error({ kind, ...fields }, "Reconciliation mismatch");
      };
      const seen = new Set<string>();
      for (const r of remote) {
        const l = r.ourKey ? byKey.get(r.ourKey) : undefined;
        if (!l) {
          if (r.ourKey === null || !(await sql`SELECT 1 FROM payouts WHERE idempotency_key = ${r.ourKey}`).length) {
            report("missing_local", { provider_id: r.providerId, amount_centavos: r.amountCentavos.toString() });
          }
          continue;
        }
        seen.add(l.idempotency_key);
        if (BigInt(l.amount_centavos) !== r.amountCentavos) {
          report("amount", { payout_id: l.id, trade_id: l.trade_id, ours: l.amount_centavos.toString(), theirs: r.amountCentavos.toString() });
        }
        if (r.destination.taxId && !matchesMaskedTaxId(r.destination.taxId, l.holder_document)) {
          report("key", { payout_id: l.id, trade_id: l.trade_id });
        }
      }
      for (const l of local) {
        if (!seen.has(l.idempotency_key) && l.status !== "PENDING" && l.status !== "FAILED") {
          report("missing_remote", { payout_id: l.id, trade_id: l.trade_id, status: l.status });
        }
      }
      return { mismatches };
    },

    start() {
      void sql
        // LISTEN back after its connection dropped: a NOTIFY may have been lost meanwhile.
        .listen("ponte_payouts", wake, wake)
        .then((l) => {
          unlisten = l.unlisten;
        })
        .catch((err: unknown) => logger.warn({ err }, "LISTEN ponte_payouts failed; polling only"));
      loops = Array.from({ length: o.concurrency }, () => worker());
      loops.push(
        (async () => {
          let lastReconcileCheck = 0;
          while (!ac.signal.aborted) {
            await delay(o.intervalMs, ac.signal);
            wake();
            if (Date.now() - lastReconcileCheck >= Math.max(o.intervalMs, 1_000)) {
              lastReconcileCheck = Date.now();
              await reconcileIfDue().catch((err: unknown) => logger.error({ err }, "Reconciliation failed"));
            }
          }
        })(),
      );
    },
    async stop() {
      ac.abort();
      for (const resolve of idle.splice(0)) resolve();
      await Promise.all(loops);
      await unlisten?.().catch((err: unknown) => logger.warn({ err }, "UNLISTEN failed"));
    },
  };
  return self;
}

/** A call started ahead of need: its failure waits for whoever asks for the result, never unhandled. */
function settled<T>(p: Promise<T>): { result: () => Promise<T> } {
  const s = p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
  return {
    result: async () => {
      const r = await s;
      if (!r.ok) throw r.error;
      return r.value;
    },
  };
}

/** The DICT holder must be the seller: document (visible digits when masked) and, when masked, the name. */
export function holderMatches(owner: KeyOwner, document: string, name: string): boolean {
  if (!matchesMaskedTaxId(owner.taxId, document)) return false;
  if (!owner.taxIdMasked) return true;
  return normalizeName(owner.holderName) === normalizeName(name);
}

const normalizeName = (s: string): string =>
  s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/\s+/g, " ").trim().toUpperCase();
