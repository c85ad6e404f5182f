import { PonteError } from "@ponte/common";
import { eventsv1 } from "@ponte/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import type { Tx } from "../db/index.js";
import { insertTrade } from "../_test/fixtures.js";
import type { Actor } from "./actor.js";
import { allowedTransitions, canTransition, TRADE_STATUSES, type ActorKind } from "./states.js";
import { tradeFromRow, type Trade, type TradeRow } from "./model.js";
import { transition, transitionLocked, transitionMany, type TransitionContext } from "./transition.js";

const ctx: TransitionContext = { subjectPrefix: "ponte.trade" };
const actors: ActorKind[] = ["system", "agent", "user", "admin"];
const actorOf = (kind: ActorKind): Actor => ({ kind, id: `${kind}-1` });

let db: Awaited<ReturnType<typeof testDb>>;
beforeAll(async () => {
  db = await testDb();
});
afterAll(async () => {
  await db.close();
});

describe("the transition table", () => {
  it("matches DESIGN.md §4", () => {
    const pairs = new Set(allowedTransitions().map((r) => `${r.from}>${r.to}`));
    const expected = [
      "PENDING>DEPOSIT_DETECTED", "PENDING>EXPIRED", "PENDING>CANCELLED", "DEPOSIT_DETECTED>PENDING",
      "DEPOSIT_DETECTED>PAYMENT_CONFIRMED", "DEPOSIT_DETECTED>UNDERPAID", "PAYMENT_CONFIRMED>PAYOUT_PENDING",
      "PAYOUT_PENDING>COMPLETED", "PAYOUT_PENDING>REFUND_PENDING", "UNDERPAID>REFUND_PENDING", "EXPIRED>REFUND_PENDING",
      "CANCELLED>REFUND_PENDING", "REFUND_PENDING>REFUNDED", "MANUAL_REVIEW>PAYMENT_CONFIRMED", "MANUAL_REVIEW>COMPLETED",
      "MANUAL_REVIEW>REFUND_PENDING",
      ...["PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "UNDERPAID", "PAYOUT_PENDING", "REFUND_PENDING"].map((s) => `${s}>MANUAL_REVIEW`),
    ];
    expect([...pairs].sort()).toEqual(expected.sort());
  });

  it("every allowed transition works in the database, with one history row and one event", async () => {
    for (const rule of allowedTransitions()) {
      for (const kind of rule.by) {
        const id = await insertTrade(db.sql, { status: rule.from });
        const t = await db.sql.begin((tx) =>
          transition(tx, ctx, { tradeId: id, from: rule.from, to: rule.to, actor: actorOf(kind), reason: "test", data: { k: "v" } }),
        );
        expect(t.status).toBe(rule.to);
        expect(t.version).toBe(2n);
        const hist = await db.sql`SELECT * FROM instant_trade_history WHERE trade_id = ${id}`;
        expect(hist).toHaveLength(1);
        expect(hist[0]).toMatchObject({ from_status: rule.from, to_status: rule.to, actor: `${kind}:${kind}-1`, reason: "test" });
        const out = await db.sql<{ subject: string; payload: Buffer }[]>`SELECT subject, payload FROM outbox WHERE trade_id = ${id}`;
        expect(out).toHaveLength(1);
        expect(out[0]!.subject).toBe(`ponte.trade.anvil.${rule.to.toLowerCase()}`);
        const ev = eventsv1.TradeEvent.decode(out[0]!.payload);
        expect(ev).toMatchObject({ tradeId: id, fromStatus: rule.from, toStatus: rule.to, version: 2n, data: { k: "v" } });
      }
    }
  });

  it("every other transition is refused and changes nothing", async () => {
    let refused = 0;
    for (const from of TRADE_STATUSES) {
      const id = await insertTrade(db.sql, { status: from });
      for (const to of TRADE_STATUSES) {
        for (const kind of actors) {
          if (canTransition(from, to, kind)) continue;
          const err = await db.sql
            .begin((tx) => transition(tx, ctx, { tradeId: id, from, to, actor: actorOf(kind), reason: "nope" }))
            .catch((e: unknown) => e);
          expect(err).toBeInstanceOf(PonteError);
          expect((err as PonteError).code).toBe("INVALID_STATE");
          refused++;
        }
      }
      const [row] = await db.sql`SELECT status, version FROM instant_trades WHERE id = ${id}`;
      expect(row).toMatchObject({ status: from, version: 1n });
      expect(await db.sql`SELECT 1 FROM instant_trade_history WHERE trade_id = ${id}`).toHaveLength(0);
      expect(await db.sql`SELECT 1 FROM outbox WHERE trade_id = ${id}`).toHaveLength(0);
    }
    expect(refused).toBeGreaterThan(400);
  });

  it("a stale expected state is refused with the status the trade is in now", async () => {
    const id = await insertTrade(db.sql, { status: "DEPOSIT_DETECTED" });
    const err = await db.sql
      .begin((tx) => transition(tx, ctx, { tradeId: id, from: "PENDING", to: "CANCELLED", actor: actorOf("user"), reason: "x" }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "STALE_STATE", details: { status: "DEPOSIT_DETECTED" } });
  });

  it("50 concurrent transitions on one trade: exactly one wins, the others conflict, one history row", async () => {
    const id = await insertTrade(db.sql, { status: "PENDING" });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        db.sql.begin((tx) =>
          transition(tx, ctx, {
            tradeId: id,
            from: "PENDING",
            to: i % 2 === 0 ? "CANCELLED" : "DEPOSIT_DETECTED",
            actor: actorOf(i % 2 === 0 ? "user" : "agent"),
            reason: `racer ${i}`,
          }),
        ),
      ),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(49);
    for (const l of lost) expect(l.reason).toMatchObject({ code: "STALE_STATE" });
    expect(await db.sql`SELECT 1 FROM instant_trade_history WHERE trade_id = ${id}`).toHaveLength(1);
    expect(await db.sql`SELECT 1 FROM outbox WHERE trade_id = ${id}`).toHaveLength(1);
  });

  it("many trades in one call: each moved once, history and events in order, stamped with the transaction's time", async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => insertTrade(db.sql, { status: "DEPOSIT_DETECTED" })));
    const trades = await db.sql.begin((tx) =>
      transitionMany(
        tx,
        ctx,
        ids.map((id, i) => ({
          tradeId: id, from: "DEPOSIT_DETECTED" as const, to: "PAYMENT_CONFIRMED" as const, actor: actorOf("agent"), reason: `final ${i}`,
          data: { n: String(i) }, set: { confirmed_amount: BigInt(i) * 10n, paid_amount: BigInt(i) },
        })),
      ),
    );
    expect(trades.map((t) => [t.id, t.status, t.version, t.confirmedAmount, t.paidAmount])).toEqual(
      ids.map((id, i) => [id, "PAYMENT_CONFIRMED", 2n, BigInt(i) * 10n, BigInt(i)]),
    );
    const hist = await db.sql<{ trade_id: string; reason: string; created_at: Date }[]>`
      SELECT trade_id, reason, created_at FROM instant_trade_history WHERE trade_id = ANY(${ids}) ORDER BY id`;
    expect(hist.map((h) => [h.trade_id, h.reason])).toEqual(ids.map((id, i) => [id, `final ${i}`]));
    const out = await db.sql<{ trade_id: string; payload: Buffer }[]>`SELECT trade_id, payload FROM outbox WHERE trade_id = ANY(${ids}) ORDER BY seq`;
    expect(out.map((o) => o.trade_id)).toEqual(ids);
    for (const [i, o] of out.entries()) {
      const ev = eventsv1.TradeEvent.decode(o.payload);
      expect(ev).toMatchObject({ tradeId: ids[i], fromStatus: "DEPOSIT_DETECTED", toStatus: "PAYMENT_CONFIRMED", version: 2n, reason: `final ${i}`, data: { n: String(i) } });
      expect(ev.occurredAt).toBe(hist[i]!.created_at.toISOString());
    }
  });

  it("many trades in one call are all or nothing: one in another state refuses the whole call", async () => {
    const ok = await insertTrade(db.sql, { status: "PENDING" });
    const moved = await insertTrade(db.sql, { status: "CANCELLED" });
    const err = await db.sql
      .begin((tx) =>
        transitionMany(tx, ctx, [
          { tradeId: ok, from: "PENDING", to: "DEPOSIT_DETECTED", actor: actorOf("agent"), reason: "x" },
          { tradeId: moved, from: "PENDING", to: "DEPOSIT_DETECTED", actor: actorOf("agent"), reason: "x" },
        ]),
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "STALE_STATE", details: { trade_id: moved, status: "CANCELLED", expected: "PENDING" } });
    const rows = await db.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${ok}`;
    expect(rows[0]!.status).toBe("PENDING");
    expect(await db.sql`SELECT 1 FROM outbox WHERE trade_id = ANY(${[ok, moved]})`).toHaveLength(0);
  });

  it("a trade's consecutive steps in one call: one UPDATE, a history row, version and event per step", async () => {
    const a = await insertTrade(db.sql, { status: "PENDING" });
    const b = await insertTrade(db.sql, { status: "PENDING" });
    const agent = actorOf("agent");
    const [ta, tb] = await db.sql.begin((tx) =>
      transitionMany(tx, ctx, [
        { tradeId: a, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "seen", set: { received_amount: 7n } },
        { tradeId: a, from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", actor: agent, reason: "final", set: { confirmed_amount: 7n, paid_amount: 7n } },
        { tradeId: b, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "seen" },
      ]),
    );
    expect([ta!.status, ta!.version, ta!.receivedAmount, ta!.confirmedAmount, ta!.paidAmount]).toEqual(["PAYMENT_CONFIRMED", 3n, 7n, 7n, 7n]);
    expect([tb!.status, tb!.version]).toEqual(["DEPOSIT_DETECTED", 2n]);
    const hist = await db.sql<{ version: bigint; from_status: string; to_status: string }[]>`
      SELECT version, from_status, to_status FROM instant_trade_history WHERE trade_id = ${a} ORDER BY version`;
    expect(hist.map((h) => [h.version, h.from_status, h.to_status])).toEqual([
      [2n, "PENDING", "DEPOSIT_DETECTED"],
      [3n, "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"],
    ]);
    const out = await db.sql<{ subject: string; payload: Buffer }[]>`SELECT subject, payload FROM outbox WHERE trade_id = ${a} ORDER BY seq`;
    expect(out.map((o) => o.subject)).toEqual(["ponte.trade.anvil.deposit_detected", "ponte.trade.anvil.payment_confirmed"]);
    expect(out.map((o) => eventsv1.TradeEvent.decode(o.payload)).map((e) => [e.version, e.fromStatus, e.toStatus])).toEqual([
      [2n, "PENDING", "DEPOSIT_DETECTED"],
      [3n, "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"],
    ]);
  });

  it("refuses steps that do not chain, or a trade's steps split by another's, and changes nothing", async () => {
    const a = await insertTrade(db.sql, { status: "PENDING" });
    const b = await insertTrade(db.sql, { status: "PENDING" });
    const agent = actorOf("agent");
    const broken = await db.sql
      .begin((tx) =>
        transitionMany(tx, ctx, [
          { tradeId: a, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "x" },
          { tradeId: a, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "x" },
        ]),
      )
      .catch((e: unknown) => e);
    expect(String(broken)).toMatch(/steps from PENDING, not from DEPOSIT_DETECTED/);
    const split = await db.sql
      .begin((tx) =>
        transitionMany(tx, ctx, [
          { tradeId: a, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "x" },
          { tradeId: b, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "x" },
          { tradeId: a, from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", actor: agent, reason: "x" },
        ]),
      )
      .catch((e: unknown) => e);
    expect(String(split)).toMatch(/not consecutive/);
    const rows = await db.sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ANY(${[a, b]})`;
    expect(rows.map((r) => r.status)).toEqual(["PENDING", "PENDING"]);
  });

  describe("transitionLocked (trades this transaction locked: the UPDATE and the records in one round trip)", () => {
    const lock = async (tx: Tx, ids: string[]) => {
      const rows = await tx<(TradeRow & { tx_now: Date })[]>`SELECT *, now() AS tx_now FROM instant_trades WHERE id = ANY(${ids}) ORDER BY id FOR UPDATE`;
      return { trades: new Map(rows.map((r) => [r.id, tradeFromRow(r)] as const)), now: rows[0]!.tx_now };
    };

    it("writes what transitionMany writes, and returns the trades as the database holds them", async () => {
      const a = await insertTrade(db.sql, { status: "PENDING" });
      const b = await insertTrade(db.sql, { status: "DEPOSIT_DETECTED" });
      const agent = actorOf("agent");
      const got = await db.sql.begin(async (tx) =>
        transitionLocked(
          tx,
          ctx,
          [
            { tradeId: a, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "seen", set: { received_amount: 7n, confirmed_amount: 0n } },
            { tradeId: a, from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", actor: agent, reason: "final", set: { confirmed_amount: 7n, paid_amount: 7n } },
            { tradeId: b, from: "DEPOSIT_DETECTED", to: "PENDING", actor: agent, reason: "reorg", set: { received_amount: 0n } },
          ],
          await lock(tx, [a, b]),
        ),
      );
      const stored = await db.sql<TradeRow[]>`SELECT * FROM instant_trades WHERE id = ANY(${[a, b]}) ORDER BY id`;
      const byId = new Map(stored.map((r) => [r.id, tradeFromRow(r)] as const));
      const pick = (t: Trade) => [t.id, t.status, t.version, t.receivedAmount, t.confirmedAmount, t.paidAmount, t.updatedAt.getTime()];
      expect(got.map(pick)).toEqual([byId.get(a)!, byId.get(b)!].map(pick));
      expect(got.map((t) => [t.status, t.version])).toEqual([["PAYMENT_CONFIRMED", 3n], ["PENDING", 2n]]);
      const hist = await db.sql<{ trade_id: string; version: bigint; to_status: string; created_at: Date }[]>`
        SELECT trade_id, version, to_status, created_at FROM instant_trade_history WHERE trade_id = ANY(${[a, b]}) ORDER BY id`;
      expect(hist.map((h) => [h.trade_id, h.version, h.to_status])).toEqual([
        [a, 2n, "DEPOSIT_DETECTED"], [a, 3n, "PAYMENT_CONFIRMED"], [b, 2n, "PENDING"],
      ]);
      const out = await db.sql<{ payload: Buffer }[]>`SELECT payload FROM outbox WHERE trade_id = ANY(${[a, b]}) ORDER BY seq`;
      const events = out.map((o) => eventsv1.TradeEvent.decode(o.payload));
      expect(events.map((e) => [e.tradeId, e.version, e.fromStatus, e.toStatus])).toEqual([
        [a, 2n, "PENDING", "DEPOSIT_DETECTED"], [a, 3n, "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"], [b, 2n, "DEPOSIT_DETECTED", "PENDING"],
      ]);
      // The event's time is the history row's and the trade's updated_at: the transaction's now().
      expect(events.map((e) => e.occurredAt)).toEqual(hist.map((h) => h.created_at.toISOString()));
    });

    it("a trade that is not as it was read (another version) refuses the call; the records roll back with it", async () => {
      const a = await insertTrade(db.sql, { status: "PENDING" });
      const b = await insertTrade(db.sql, { status: "PENDING" });
      const agent = actorOf("agent");
      const err = await db.sql
        .begin(async (tx) => {
          const locked = await lock(tx, [a, b]);
          // Read before a change this transaction made itself: the version no longer matches.
          await tx`UPDATE instant_trades SET version = version + 1 WHERE id = ${b}`;
          return transitionLocked(
            tx,
            ctx,
            [
              { tradeId: a, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "seen" },
              { tradeId: b, from: "PENDING", to: "DEPOSIT_DETECTED", actor: agent, reason: "seen" },
            ],
            locked,
          );
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "STALE_STATE", details: { trade_id: b, status: "PENDING", expected: "PENDING" } });
      const rows = await db.sql<{ status: string; version: bigint }[]>`SELECT status, version FROM instant_trades WHERE id = ANY(${[a, b]}) ORDER BY id`;
      expect(rows.map((r) => [r.status, r.version])).toEqual([["PENDING", 1n], ["PENDING", 1n]]);
      expect(await db.sql`SELECT 1 FROM instant_trade_history WHERE trade_id = ANY(${[a, b]})`).toHaveLength(0);
      expect(await db.sql`SELECT 1 FROM outbox WHERE trade_id = ANY(${[a, b]})`).toHaveLength(0);
    });

    it("refuses a step from a state the locked trade is not in, before writing anything", async () => {
      const a = await insertTrade(db.sql, { status: "PENDING" });
      const err = await db.sql
        .begin(async (tx) =>
          transitionLocked(tx, ctx, [{ tradeId: a, from: "DEPOSIT_DETECTED", to: "PAYMENT_CONFIRMED", actor: actorOf("agent"), reason: "x" }], await lock(tx, [a])),
        )
        .catch((e: unknown) => e);
      expect(String(err)).toMatch(/is not locked in DEPOSIT_DETECTED/);
      expect(await db.sql`SELECT 1 FROM outbox WHERE trade_id = ${a}`).toHaveLength(0);
    });
  });
});
