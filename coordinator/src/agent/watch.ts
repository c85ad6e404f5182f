import { createWakeup, type Logger } from "@ponte/common";
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
// Chunks per cursor read of the snapshot: about this many times CHUNK addresses wait in memory
// for a slow agent, twice over.
const CHUNK_BATCH = 10;
// A creation commits a moment after its assigned_at (the transaction's start); re-reading this
// far back on every change closes that gap, and `recent` drops the repeats.
const SLACK_SECONDS = 30;

// Read as arrays (`.values()`), in this order, straight into the columns: no object per row, and
// the deadline as float8 epoch ms (no Date). BIP32 indexes are below 2^31: int4, no BigInt per row.
type Row = [address: string, contract: string, watchUntilMs: number, derivationIndex: number];
/** A snapshot chunk as Postgres aggregates it: each column's values joined by commas. */
type ChunkRow = [address: string, contract: string, watchUntilMs: string, derivationIndex: string, recent: string | null];

/** A chunk's lists; none of its values (addresses, contracts, numbers) holds a comma. */
function splitChunk([address, contract, until, derivationIndex, recent]: ChunkRow): [string[], string[], string[], string[], string[]] {
  const cols = [address.split(","), contract.split(","), until.split(","), derivationIndex.split(",")] as const;
  if (cols.some((c) => c.length !== cols[0].length)) throw new Error("watch snapshot: a chunk's columns differ in length");
  return [...cols, recent === null ? [] : recent.split(",")];
}
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
  // One query read through a cursor, CHUNK_BATCH chunks at a time, each chunk one row: Postgres
  // joins a range of CHUNK derivation indexes' columns into comma-separated strings (`string_agg`),
  // a plain aggregate per range over the index on (network, derivation_index) and the trades'
  // primary key, so rows stream in index order without a sort, and parsing stays off this process
  // (five columns of a million rows parsed one by one were 1.2 s of its CPU, splitting strings
  // 0.27 s). The cursor bounds what waits in the gRPC buffers for a slow agent: the next batch is
  // read while this one's messages drain, and the one after only once they have. Earlier shapes
  // — pages of 250k indexes with a hash join each, keyset pages of CHUNK rows — each rescanned
  // the trades or sorted (bench/README.md, B8). The aggregates of one range see its rows in the
  // same order, so the lists line up; their lengths are checked anyway.
  const [range] = await sql<{ lo: bigint | null; hi: bigint | null }[]>`
    SELECT min(derivation_index)::int8 AS lo, max(derivation_index)::int8 AS hi
      FROM deposit_addresses WHERE network = ${network} AND status = 'ASSIGNED'`;
  const batch = new ColumnsBuilder();
  let draining: Promise<void>[] = [];
  if (range?.lo != null && range.hi != null) {
    const chunks = sql`
      SELECT c.* FROM generate_series(${range.lo}::int8, ${range.hi}::int8, ${CHUNK}) AS g(lo)
       CROSS JOIN LATERAL (
        SELECT string_agg(d.address, ',') AS address, string_agg(coalesce(t.contract, ''), ','),
               string_agg(((extract(epoch FROM t.monitoring_until) * 1000)::float8)::text, ','),
               string_agg(d.derivation_index::text, ','),
               string_agg(d.address, ',') FILTER (WHERE d.assigned_at >= ${since0})
          FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
         WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND t.monitoring_until > now()
           AND d.derivation_index >= g.lo AND d.derivation_index < g.lo + ${CHUNK}) c
       WHERE c.address IS NOT NULL`
      .values()
      .cursor(CHUNK_BATCH);
    for await (const rows of chunks) {
      if (opts.signal.aborted || sink.closed) return;
      const sends: Promise<void>[] = [];
      // postgres.js types `.values()` rows loosely.
      for (const row of rows as unknown as ChunkRow[]) {
        const [address, contract, until, derivationIndex, isRecent] = splitChunk(row);
        for (let i = 0; i < address.length; i++) {
          const ms = Number(until[i]);
          batch.push(address[i]!, contract[i]!, ms, Number(derivationIndex[i]));
          sentAddress.push(address[i]!);
          sentUntil.push(ms);
          if (batch.length === CHUNK) sends.push(sink.send({ add: batch.take(), remove: [], snapshotComplete: false }));
        }
        for (const a of isRecent) recent.add(a);
      }
      await Promise.all(draining);
      draining = sends;
    }
  }
  await Promise.all(draining);
  // The rest (maybe none) says the snapshot is complete.
  await sink.send({ add: batch.take(), remove: [], snapshotComplete: true });
  opts.logger.info({ network, addresses: sentAddress.length, ms: Math.round(performance.now() - started) }, "Watch snapshot sent");

  // LISTEN (re)established counts as news too: a NOTIFY sent while its connection was down (or
  // before it first listened, after the snapshot's read) is lost, and the poll then looks now
  // rather than up to pollMs later.
  const news = createWakeup();
  const listener = await sql.listen(
    "ponte_watch",
    (payload) => {
      if (payload === network) news.notify();
    },
    news.notify,
  );
  try {
    while (!opts.signal.aborted && !sink.closed) {
      await news.wait(opts.pollMs, opts.signal);
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
