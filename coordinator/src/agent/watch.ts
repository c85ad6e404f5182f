import { delay, type Logger } from "@ponte/common";
import type { agentv1 } from "@ponte/proto";
import type { Sql } from "../db/index.js";

/**
 * Watched addresses in columns, as the stream sends them (agent.proto's WatchBatch): entry i of
 * each list belongs to address[i]. A million addresses stream at an agent's start; columns spare
 * both ends an object and an ISO date string per address (bench/README.md, B8).
 */
export type WatchColumns = agentv1.WatchBatch;

export interface WatchSink {
  /** Resolves when the transport can take more (backpressure): a snapshot is not buffered whole. */
  send(update: { add: WatchColumns; remove: string[]; snapshotComplete: boolean }): Promise<void>;
  readonly closed: boolean;
}

const CHUNK = 5_000;
// Derivation indexes per snapshot query: at most this many rows wait in memory for a slow agent.
const PAGE = 250_000;
// A creation commits a moment after its assigned_at (the transaction's start); re-reading this
// far back on every change closes that gap, and `recent` drops the repeats.
const SLACK_SECONDS = 30;

// Read as arrays (`.values()`), in this order, straight into the columns: no object per row, and
// the deadline as float8 epoch ms (no Date). BIP32 indexes are below 2^31: int4, no BigInt per row.
type Row = [address: string, contract: string, watchUntilMs: number, derivationIndex: number, recent: boolean];
const COLUMNS = (sql: Sql) => sql`
  d.address, t.contract, (extract(epoch FROM t.monitoring_until) * 1000)::float8, d.derivation_index::int4`;

class ColumnsBuilder {
  private cols = ColumnsBuilder.empty();
  private readonly contractIndex = new Map<string, number>();

  static empty(): WatchColumns {
    return { address: [], contracts: [], contract: [], watchUntilMs: [], derivationIndex: [] };
  }

  get length(): number {
    return this.cols.address.length;
  }

  push(address: string, contract: string, watchUntilMs: number, derivationIndex: number): void {
    this.cols.address.push(address);
    this.cols.contract.push(contract === "" ? -1 : this.intern(contract));
    this.cols.watchUntilMs.push(watchUntilMs);
    this.cols.derivationIndex.push(derivationIndex);
  }

  take(): WatchColumns {
    const out = this.cols;
    this.cols = ColumnsBuilder.empty();
    this.contractIndex.clear();
    return out;
  }

  private intern(contract: string): number {
    let i = this.contractIndex.get(contract);
    if (i === undefined) {
      i = this.cols.contracts.push(contract) - 1;
      this.contractIndex.set(contract, i);
    }
    return i;
  }
}

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
  const started = performance.now();
  const since0 = new Date(lastPoll.getTime() - SLACK_SECONDS * 1000);
  // Read in pages of derivation indexes, each one query streamed row by row (`forEach`), CHUNK
  // rows per message. Not a cursor: Postgres runs a portal read in row batches without parallel
  // workers, which made the read 2.4× slower at 100k addresses; not keyset pages of CHUNK either
  // (a plan and sort each: 35 s at 1M). Pages bound what waits in the gRPC buffers for a slow
  // agent: page k+1 is read while page k's messages drain, and page k+2 only once they have
  // (bench/README.md, B8).
  const [range] = await sql<{ lo: number | null; hi: number | null }[]>`
    SELECT min(derivation_index)::int4 AS lo, max(derivation_index)::int4 AS hi
      FROM deposit_addresses WHERE network = ${network} AND status = 'ASSIGNED'`;
  const batch = new ColumnsBuilder();
  let sends: Promise<void>[] = [];
  let draining: Promise<void>[] = [];
  for (let from = range?.lo ?? 0, hi = range?.hi ?? -1; from <= hi; from += PAGE) {
    if (opts.signal.aborted || sink.closed) return;
    const page = sql`
      SELECT ${COLUMNS(sql)}, d.assigned_at >= ${since0}
        FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
       WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND t.monitoring_until > now()
         AND d.derivation_index >= ${from} AND d.derivation_index < ${from + PAGE}`.values();
    // postgres.js types `.values()` rows loosely.
    await page.forEach((row) => {
      const [address, contract, until, derivationIndex, isRecent] = row as unknown as Row;
      batch.push(address, contract, until, derivationIndex);
      sentAddress.push(address);
      sentUntil.push(until);
      if (isRecent) recent.add(address);
      if (batch.length === CHUNK) sends.push(sink.send({ add: batch.take(), remove: [], snapshotComplete: false }));
    });
    await Promise.all(draining);
    [draining, sends] = [sends, []];
  }
  await Promise.all(draining);
  // The rest (maybe none) says the snapshot is complete.
  await sink.send({ add: batch.take(), remove: [], snapshotComplete: true });
  opts.logger.info({ network, addresses: sentAddress.length, ms: Math.round(performance.now() - started) }, "Watch snapshot sent");

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
      const fresh = (await sql`
        SELECT ${COLUMNS(sql)}
          FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
         WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND d.assigned_at >= ${since} AND t.monitoring_until > now()`
        .values()) as unknown as Row[];
      for (const [address, contract, until, derivationIndex] of fresh) {
        if (recent.has(address)) continue;
        recent.add(address);
        batch.push(address, contract, until, derivationIndex);
        sentAddress.push(address);
        sentUntil.push(until);
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
      if (batch.length > 0 || remove.length > 0) await sink.send({ add: batch.take(), remove, snapshotComplete: false });
    }
  } finally {
    await listener.unlisten().catch((err: unknown) => opts.logger.warn({ err }, "UNLISTEN failed"));
  }
}
