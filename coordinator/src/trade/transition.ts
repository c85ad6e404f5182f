import { newId, PonteError } from "@ponte/common";
import { eventsv1, reusingEncoder } from "@ponte/proto";
import type { Tx } from "../db/index.js";
import { actorString, type Actor } from "./actor.js";
import { tradeFromRow, type Trade, type TradeRow } from "./model.js";
import { assertTransition, type TradeStatus } from "./states.js";

export interface TransitionContext {
  subjectPrefix: string;
  onTransition?: (from: TradeStatus | null, to: TradeStatus, actor: Actor) => void;
}

export interface TransitionArgs {
  tradeId: string;
  from: TradeStatus;
  to: TradeStatus;
  actor: Actor;
  reason: string;
  data?: Record<string, string>;
  /** Extra columns to set in the same guarded UPDATE (amounts the transition depends on). */
  set?: Partial<Record<"received_amount" | "confirmed_amount" | "paid_amount", bigint>>;
}

/**
 * The one way trade state changes: checks the table, then a single guarded
 * UPDATE … WHERE status = $from, the history row and the outbox event, all in `tx`.
 * A concurrent change makes the UPDATE match nothing → STALE_STATE (409) with the status now.
 */
export async function transition(tx: Tx, ctx: TransitionContext, a: TransitionArgs): Promise<Trade> {
  return (await transitionMany(tx, ctx, [a]))[0]!;
}

/**
 * `transition` for many trades at once, each by one or more steps: one guarded
 * `UPDATE … FROM unnest(…) WHERE status = expected`, then every history row, outbox event and
 * NOTIFY in one statement — two round trips for a whole report instead of four per trade and
 * step (bench/README.md, B4). A trade's steps are consecutive in `list`, each from where the one
 * before went (PENDING → DEPOSIT_DETECTED → PAYMENT_CONFIRMED in one catch-up report): every step
 * is checked against the table and gets its own history row, version and event, and the row is
 * updated once, guarded by the first step's state. All or nothing: if any trade is not in its
 * expected state it throws STALE_STATE and the caller's transaction rolls back.
 * Returns each trade as its last step left it, in the order first given.
 */
export async function transitionMany(tx: Tx, ctx: TransitionContext, list: readonly TransitionArgs[]): Promise<Trade[]> {
  const paths = pathsOf(list);
  if (paths.length === 0) return [];
  const rows = await guardedUpdate(tx, paths).execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  if (rows.length < paths.length) await throwStale(tx, paths.find((p) => !byId.has(p[0]!.tradeId))![0]!);
  const trades = paths.map((p) => tradeFromRow(byId.get(p[0]!.tradeId)!));
  await record(tx, ctx, stepsOf(paths, trades));
  for (const a of list) ctx.onTransition?.(a.from, a.to, a.actor);
  return trades;
}

/**
 * `transitionMany` for trades this transaction has locked (`SELECT … FOR UPDATE`), given as
 * they were read with the transaction's `now()`: how each will look after its steps is known
 * without reading it back, so the guarded UPDATE (by state and version) and the history,
 * outbox and NOTIFY statement go to Postgres together, one round trip. If the UPDATE misses a
 * trade it throws STALE_STATE and the caller's transaction rolls back with what was recorded.
 */
export async function transitionLocked(
  tx: Tx,
  ctx: TransitionContext,
  list: readonly TransitionArgs[],
  locked: { trades: ReadonlyMap<string, Trade>; now: Date },
): Promise<Trade[]> {
  const paths = pathsOf(list);
  if (paths.length === 0) return [];
  const trades = paths.map((p) => {
    const t = locked.trades.get(p[0]!.tradeId);
    if (!t || t.status !== p[0]!.from) throw new Error(`transitionLocked: trade ${p[0]!.tradeId} is not locked in ${p[0]!.from}`);
    return p.reduce<Trade>(
      (cur, a) => ({
        ...cur,
        status: a.to,
        version: cur.version + 1n,
        updatedAt: locked.now,
        receivedAmount: a.set?.received_amount ?? cur.receivedAmount,
        confirmedAmount: a.set?.confirmed_amount ?? cur.confirmedAmount,
        paidAmount: a.set?.paid_amount ?? cur.paidAmount,
      }),
      t,
    );
  });
  const [rows] = await Promise.all([
    guardedUpdate(tx, paths, (id) => locked.trades.get(id)!.version, "id").execute(),
    record(tx, ctx, stepsOf(paths, trades)),
  ]);
  if (rows.length < paths.length) {
    const hit = new Set(rows.map((r) => r.id));
    await throwStale(tx, paths.find((p) => !hit.has(p[0]!.tradeId))![0]!);
  }
  for (const a of list) ctx.onTransition?.(a.from, a.to, a.actor);
  return trades;
}

/**
 * The one guarded UPDATE of every path's trade: to its last step's state, its version up by its
 * steps, its amounts as set; only where the trade is in the path's first state (and, given
 * `versionOf`, at that version). Returns the updated rows, or only their ids where the caller
 * knows the rows already (decoding 30 columns of every trade was two fifths of a batched
 * report's row decoding; bench/README.md, B4). Not sent until executed.
 */
function guardedUpdate<R extends "rows" | "id" = "rows">(
  tx: Tx,
  paths: TransitionArgs[][],
  versionOf?: (tradeId: string) => bigint,
  returning?: R,
) {
  const ids = paths.map((p) => p[0]!.tradeId);
  return tx<(R extends "id" ? Pick<TradeRow, "id"> : TradeRow)[]>`
    UPDATE instant_trades t
       SET status = u.to_status, version = t.version + u.steps, updated_at = now(),
           received_amount = COALESCE(NULLIF(u.received, '')::numeric, t.received_amount),
           confirmed_amount = COALESCE(NULLIF(u.confirmed, '')::numeric, t.confirmed_amount),
           paid_amount = COALESCE(NULLIF(u.paid, '')::numeric, t.paid_amount)
      FROM unnest(${ids}::text[], ${paths.map((p) => p[0]!.from)}::text[], ${ids.map((id) => versionOf?.(id).toString() ?? "")}::text[],
                  ${paths.map((p) => p.at(-1)!.to)}::text[], ${paths.map((p) => p.length)}::int[],
                  ${amounts(paths, "received_amount")}::text[], ${amounts(paths, "confirmed_amount")}::text[], ${amounts(paths, "paid_amount")}::text[])
           AS u(id, from_status, version, to_status, steps, received, confirmed, paid)
     WHERE t.id = u.id AND t.status = u.from_status AND t.version = COALESCE(NULLIF(u.version, '')::bigint, t.version)
 RETURNING ${returning === "id" ? tx`t.id` : tx`t.*`}`;
}

/** A trade's steps, grouped: consecutive in `list`, each from where the one before went. */
function pathsOf(list: readonly TransitionArgs[]): TransitionArgs[][] {
  const paths: TransitionArgs[][] = [];
  const done = new Set<string>();
  for (const a of list) {
    assertTransition(a.from, a.to, a.actor.kind, a.tradeId);
    const path = paths.at(-1);
    if (path && path[0]!.tradeId === a.tradeId) {
      if (path.at(-1)!.to !== a.from) throw new Error(`transitionMany: trade ${a.tradeId} steps from ${a.from}, not from ${path.at(-1)!.to}`);
      path.push(a);
      continue;
    }
    // A trade's steps must be consecutive: the row is updated once.
    if (done.has(a.tradeId)) throw new Error(`transitionMany: the steps of trade ${a.tradeId} are not consecutive`);
    done.add(a.tradeId);
    paths.push([a]);
  }
  return paths;
}

/** Each column as the path's last step that sets it left it ('' = unchanged). */
const amounts = (paths: TransitionArgs[][], k: "received_amount" | "confirmed_amount" | "paid_amount"): string[] =>
  paths.map((p) => p.reduce<string>((v, a) => a.set?.[k]?.toString() ?? v, ""));

/** Every step of every path, with the trade as that step left it; `trades[i]` is path i's last. */
function stepsOf(paths: TransitionArgs[][], trades: Trade[]): Step[] {
  const steps: Step[] = [];
  paths.forEach((p, i) => {
    const last = trades[i]!;
    // Step k of n left the trade at version (final − n + k) in its `to` state.
    p.forEach((a, k) => {
      const trade = k === p.length - 1 ? last : { ...last, status: a.to, version: last.version - BigInt(p.length - 1 - k) };
      steps.push({ trade, from: a.from, actor: a.actor, reason: a.reason, data: a.data ?? {} });
    });
  });
  return steps;
}

async function throwStale(tx: Tx, missing: TransitionArgs): Promise<never> {
  const now = await tx<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${missing.tradeId}`;
  if (now.length === 0) throw new PonteError("TRADE_NOT_FOUND", "Trade not found", { trade_id: missing.tradeId });
  throw new PonteError("STALE_STATE", `The trade is ${now[0]!.status}, not ${missing.from}`, {
    trade_id: missing.tradeId,
    status: now[0]!.status,
    expected: missing.from,
  });
}

/** The creation of a trade is its first history row and event (from = null, version 1). */
export async function recordCreated(tx: Tx, ctx: TransitionContext, trade: Trade, actor: Actor): Promise<void> {
  await record(tx, ctx, [{ trade, from: null, actor, reason: "created", data: { quote_id: trade.quoteId } }]);
  ctx.onTransition?.(null, trade.status, actor);
}

interface Step {
  /** The trade after the step. */
  trade: Trade;
  from: TradeStatus | null;
  actor: Actor;
  reason: string;
  data: Record<string, string>;
}

/**
 * History rows, outbox events and NOTIFYs of steps already applied, in one statement.
 * The event's time is the history row's: both are the transaction's now(), which the trade's
 * `updated_at` was just set to.
 */
async function record(tx: Tx, ctx: TransitionContext, steps: readonly Step[]): Promise<void> {
  const eventIds: string[] = [];
  const subjects: string[] = [];
  // The payloads travel as one bytea and each event's (1-based offset, length) in it: one hex
  // string for the lot instead of a hex string per event that postgres.js then escapes into an
  // array literal (bench/README.md, B4).
  const payloads: Uint8Array[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  let at = 1;
  for (const s of steps) {
    const { trade } = s;
    const eventId = newId("event");
    eventIds.push(eventId);
    subjects.push(`${ctx.subjectPrefix}.${subjectToken(trade.network)}.${trade.status.toLowerCase()}`);
    const payload = encodeEvent({
      eventId,
      tradeId: trade.id,
      userId: trade.userId,
      network: trade.network,
      symbol: trade.symbol,
      fromStatus: s.from ?? "",
      toStatus: trade.status,
      version: trade.version,
      actor: actorString(s.actor),
      reason: s.reason,
      occurredAt: trade.updatedAt.toISOString(),
      cryptoAmount: trade.cryptoAmount.toString(),
      fiatAmountCentavos: trade.fiatCentavos.toString(),
      depositAddress: trade.depositAddress,
      data: s.data,
    });
    payloads.push(payload);
    offsets.push(at);
    lengths.push(payload.length);
    at += payload.length;
  }
  // Wake the payout workers at once rather than at their next poll.
  const channels = steps.some((s) => s.trade.status === "PAYMENT_CONFIRMED") ? ["ponte_outbox", "ponte_payouts"] : ["ponte_outbox"];
  const ids = steps.map((s) => s.trade.id);
  // Data-modifying CTEs run once each whether or not the outer query reads them; rows are
  // inserted in array order, so the outbox's seq follows the steps.
  await tx`
    WITH history AS (
      INSERT INTO instant_trade_history (trade_id, version, from_status, to_status, actor, reason, data)
      SELECT h.trade_id, h.version, NULLIF(h.from_status, ''), h.to_status, h.actor, h.reason, h.data::jsonb
        FROM unnest(${ids}::text[], ${steps.map((s) => s.trade.version.toString())}::bigint[],
                    ${steps.map((s) => s.from ?? "")}::text[], ${steps.map((s) => s.trade.status)}::text[],
                    ${steps.map((s) => actorString(s.actor))}::text[], ${steps.map((s) => s.reason)}::text[],
                    ${steps.map((s) => JSON.stringify(s.data))}::text[])
             AS h(trade_id, version, from_status, to_status, actor, reason, data)
    ), events AS (
      INSERT INTO outbox (event_id, trade_id, subject, payload)
      SELECT e.event_id, e.trade_id, e.subject, substring(${Buffer.concat(payloads, at - 1)}::bytea FROM e.off FOR e.len)
        FROM unnest(${eventIds}::text[], ${ids}::text[], ${subjects}::text[], ${offsets}::int[], ${lengths}::int[])
             AS e(event_id, trade_id, subject, off, len)
    )
    SELECT pg_notify(c, '') FROM unnest(${channels}::text[]) AS c`.execute();
}

// One writer for every event: its buffer grows once, not from empty for each message.
const encodeEvent = reusingEncoder(eventsv1.TradeEvent.encode);

/** NATS subject tokens may not contain dots, spaces or wildcards. */
const subjectToken = (s: string): string => s.replace(/[.\s*>]/g, "_");
