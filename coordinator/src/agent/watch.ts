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
  send(update: { upsert: Watched[]; remove: string[]; snapshotComplete: boolean }): void;
  readonly closed: boolean;
}

const CHUNK = 5_000;
// A creation commits a moment after its assigned_at (the transaction's start); re-reading this
// far back on every change closes that gap, and the sent-set drops the repeats.
const SLACK_SECONDS = 30;

interface Row {
  address: string;
  trade_id: string;
  contract: string;
  monitoring_until: Date;
  derivation_index: bigint;
}
const toWatched = (r: Row): Watched => ({
  address: r.address,
  tradeId: r.trade_id,
  contract: r.contract,
  watchUntil: r.monitoring_until,
  derivationIndex: Number(r.derivation_index),
});

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
  const sent = new Map<string, Date>();
  // One query read through a cursor, CHUNK rows per message: it used to be keyset pages of
  // CHUNK (`ORDER BY address LIMIT`), each a fresh plan and sort (~135 ms a page at 1M
  // addresses: 35 s for the snapshot; bench/README.md, B8). Order does not matter to the agent.
  let pending: Watched[] | undefined;
  const rows = sql<Row[]>`
    SELECT d.address, d.trade_id, t.contract, t.monitoring_until, d.derivation_index
      FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
     WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND t.monitoring_until > now()`.cursor(CHUNK);
  for await (const chunk of rows) {
    if (opts.signal.aborted || sink.closed) return;
    for (const r of chunk) sent.set(r.address, r.monitoring_until);
    // Held back one chunk, so the last message can say the snapshot is complete.
    if (pending) sink.send({ upsert: pending, remove: [], snapshotComplete: false });
    pending = chunk.map(toWatched);
  }
  sink.send({ upsert: pending ?? [], remove: [], snapshotComplete: true });

  let dirty = false;
  let wake: (() => void) | undefined;
  const listener = await sql.listen("ponte_watch", (payload) => {
    if (payload === network) {
      dirty = true;
      wake?.();
    }
  });
  try {
    let lastPoll = new Date(Date.now());
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
      const fresh = await sql<Row[]>`
        SELECT d.address, d.trade_id, t.contract, t.monitoring_until, d.derivation_index
          FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
         WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND d.assigned_at >= ${since} AND t.monitoring_until > now()`;
      const upsert = fresh.filter((r) => !sent.has(r.address)).map(toWatched);
      for (const w of upsert) sent.set(w.address, w.watchUntil);
      const now = Date.now();
      // Walked in place: spreading the map made an array of every watched address per poll.
      const remove: string[] = [];
      for (const [a, until] of sent) if (until.getTime() <= now) remove.push(a);
      for (const a of remove) sent.delete(a);
      if (upsert.length > 0 || remove.length > 0) sink.send({ upsert, remove, snapshotComplete: false });
    }
  } finally {
    await listener.unlisten().catch((err: unknown) => opts.logger.warn({ err }, "UNLISTEN failed"));
  }
}
