import { delay, type Logger } from "@ponte/common";
import type { Sql } from "../db/index.js";

export interface Watched {
  address: string;
  tradeId: string;
  contract: string;
  watchUntil: Date;
  derivationIndex: number;
}

export interface WatchSink {
  /** Resolves when the transport can take more (backpressure): a snapshot is not buffered whole. */
  send(update: { upsert: Watched[]; remove: string[]; snapshotComplete: boolean }): Promise<void>;
  readonly closed: boolean;
}

const CHUNK = 5_000;
// A creation commits a moment after its assigned_at (the transaction's start); re-reading this
// far back on every change closes that gap, and `recent` drops the repeats.
const SLACK_SECONDS = 30;

// The columns come out named as Watched's fields: the rows are sent as they are, no object per
// row built after postgres' own.
const COLUMNS = (sql: Sql) => sql`
  d.address, d.trade_id AS "tradeId", t.contract, t.monitoring_until AS "watchUntil",
  d.derivation_index::int4 AS "derivationIndex"`; // BIP32 indexes are below 2^31: no BigInt per row

/**
 * Streams a network's watch set — every deposit address whose trade is still monitored
 * (monitoring_until in the future, whatever its status, so late deposits are seen) — as a
 * snapshot, then live additions (on NOTIFY ponte_watch, or every pollMs) and removals.
 */
export async function streamWatchSet(opts: {
  sql: Sql;
  network: string;
  sink: WatchSink;
  signal: AbortSignal;
  pollMs: number;
  logger: Logger;
}): Promise<void> {
  const { sql, network, sink } = opts;
  // What the agent holds, for the removals: two columns (address, deadline in epoch ms) instead of
  // a Map of a million addresses, whose hashing and growth cost the snapshot as much as the rest of
  // its work here (bench/README.md, B8).
  const sentAddress: string[] = [];
  const sentUntil: number[] = [];
  // What a live poll may find again — the snapshot's rows assigned within its look-back, and what
  // the live polls sent — so it is not sent twice; dropped with the removal.
  const recent = new Set<string>();
  // Taken before the snapshot's query: a trade created while a long snapshot streams (a million
  // addresses take seconds) is not in it, so the first poll must look back from here, not from
  // the snapshot's end.
  let lastPoll = new Date();
  const since0 = new Date(lastPoll.getTime() - SLACK_SECONDS * 1000);
  // One query read through a cursor, CHUNK rows per message: it used to be keyset pages of
  // CHUNK (`ORDER BY address LIMIT`), each a fresh plan and sort (~135 ms a page at 1M
  // addresses: 35 s for the snapshot; bench/README.md, B8). Order does not matter to the agent.
  let pending: Watched[] | undefined;
  const rows = sql<(Watched & { recent: boolean })[]>`
    SELECT ${COLUMNS(sql)}, d.assigned_at >= ${since0} AS recent
      FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
     WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND t.monitoring_until > now()`.cursor(CHUNK);
  for await (const chunk of rows) {
    if (opts.signal.aborted || sink.closed) return;
    for (const r of chunk) {
      sentAddress.push(r.address);
      sentUntil.push(r.watchUntil.getTime());
      if (r.recent) recent.add(r.address);
    }
    // Held back one chunk, so the last message can say the snapshot is complete.
    if (pending) await sink.send({ upsert: pending, remove: [], snapshotComplete: false });
    pending = chunk;
  }
  await sink.send({ upsert: pending ?? [], remove: [], snapshotComplete: true });

  let dirty = false;
  let wake: (() => void) | undefined;
  const listener = await sql.listen("ponte_watch", (payload) => {
    if (payload === network) {
      dirty = true;
      wake?.();
    }
  });
  try {
    while (!opts.signal.aborted && !sink.closed) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (dirty) resolve();
        void delay(opts.pollMs, opts.signal).then(resolve);
      });
      wake = undefined;
      dirty = false;
      if (opts.signal.aborted || sink.closed) break;
      const since = new Date(lastPoll.getTime() - SLACK_SECONDS * 1000);
      lastPoll = new Date();
      const fresh = await sql<Watched[]>`
        SELECT ${COLUMNS(sql)}
          FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
         WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND d.assigned_at >= ${since} AND t.monitoring_until > now()`;
      const upsert = fresh.filter((r) => !recent.has(r.address));
      for (const w of upsert) {
        recent.add(w.address);
        sentAddress.push(w.address);
        sentUntil.push(w.watchUntil.getTime());
      }
      const now = Date.now();
      // Walked in place, the last entry moved into each removed one's place.
      const remove: string[] = [];
      for (let i = 0; i < sentUntil.length; ) {
        if (sentUntil[i]! > now) {
          i++;
          continue;
        }
        remove.push(sentAddress[i]!);
        recent.delete(sentAddress[i]!);
        sentAddress[i] = sentAddress[sentAddress.length - 1]!;
        sentUntil[i] = sentUntil[sentUntil.length - 1]!;
        sentAddress.pop();
        sentUntil.pop();
      }
      if (upsert.length > 0 || remove.length > 0) await sink.send({ upsert, remove, snapshotComplete: false });
    }
  } finally {
    await listener.unlisten().catch((err: unknown) => opts.logger.warn({ err }, "UNLISTEN failed"));
  }
}
