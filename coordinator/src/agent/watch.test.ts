import { createLogger } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { testDb } from "../_test/db.js";
import { insertTrade } from "../_test/fixtures.js";
import { streamWatchSet, type WatchColumns } from "./watch.js";

const logger = createLogger({ name: "watch-test", level: "silent" });
let db: Awaited<ReturnType<typeof testDb>>;
beforeAll(async () => {
  db = await testDb();
});
afterAll(async () => db?.close());

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let networks = 0;
/** A trade watched on `network` at `address` (derivation index `index`), assigned `agoSeconds` ago. */
async function watchedTrade(network: string, address: string, index: number, agoSeconds = 0, o: { notify?: boolean } = {}): Promise<string> {
  const tradeId = await insertTrade(db.sql, { network });
  await db.sql`
    INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status, trade_id, assigned_at)
    VALUES (${network}, ${address}, ${index}, ${`m/0/${index}`}, 'ASSIGNED', ${tradeId}, now() - make_interval(secs => ${agoSeconds}))`;
  if (o.notify ?? true) await db.sql`SELECT pg_notify('ponte_watch', ${network})`;
  return tradeId;
}

type Update = { add: WatchColumns; remove: string[]; snapshotComplete: boolean };
/** A batch's columns back as one object per address. */
const rows = (c: WatchColumns) =>
  c.address.map((address, i) => ({
    address,
    contract: c.contract[i]! < 0 ? null : c.contracts[c.contract[i]!],
    watchUntilMs: c.watchUntilMs[i],
    derivationIndex: c.derivationIndex[i],
  }));
function stream(network: string, onSend: (u: Update) => void | Promise<void> = () => {}, pollMs = 100) {
  const updates: Update[] = [];
  const ac = new AbortController();
  const done = streamWatchSet({
    sql: db.sql,
    network,
    signal: ac.signal,
    pollMs,
    logger,
    sink: {
      closed: false,
      send: async (u) => {
        updates.push(u);
        await onSend(u);
      },
    },
  });
  cleanups.push(async () => {
    ac.abort();
    await done;
  });
  const sent = (address: string) => updates.flatMap((u) => rows(u.add)).filter((w) => w.address === address);
  const removed = (address: string) => updates.flatMap((u) => u.remove).filter((a) => a === address);
  return { updates, sent, removed };
}

describe("watch stream (coordinator side)", () => {
  it("sends the snapshot, then each new address once and each ended one once", async () => {
    const network = `watch-${process.pid}-${networks++}`;
    // Assigned just now: inside the first poll's look-back, yet in the snapshot already; its
    // monitoring ends a moment after.
    const t1 = await watchedTrade(network, "0xa1", 1);
    await db.sql`UPDATE instant_trades SET monitoring_until = now() + interval '3 seconds' WHERE id = ${t1}`;
    await watchedTrade(network, "0xa2", 2, 3_600);
    const s = stream(network);
    await eventually(() => s.updates.some((u) => u.snapshotComplete));
    expect(s.updates).toHaveLength(1);
    expect(s.updates[0]!.add.address.sort()).toEqual(["0xa1", "0xa2"]);
    const [until] = await db.sql<{ ms: number }[]>`
      SELECT (extract(epoch FROM monitoring_until) * 1000)::float8 AS ms FROM instant_trades WHERE id = ${t1}`;
    expect(s.sent("0xa1")).toEqual([{ address: "0xa1", contract: null, watchUntilMs: until!.ms, derivationIndex: 1 }]);

    await watchedTrade(network, "0xa3", 3);
    await eventually(() => s.sent("0xa3").length === 1);
    expect(s.sent("0xa3")[0]).toMatchObject({ contract: null, derivationIndex: 3 });
    await eventually(() => s.removed("0xa1").length === 1, { timeout: 8_000 });
    // More polls (each NOTIFY wakes one): nothing is sent or removed twice.
    for (let i = 0; i < 3; i++) await db.sql`SELECT pg_notify('ponte_watch', ${network})`;
    const polls = s.updates.length;
    await watchedTrade(network, "0xa4", 4);
    await eventually(() => s.sent("0xa4").length === 1);
    expect(s.updates.length).toBe(polls + 1);
    expect(["0xa1", "0xa2", "0xa3"].map((a) => s.sent(a).length)).toEqual([1, 1, 1]);
    expect(s.removed("0xa1")).toHaveLength(1);
  });

  it("sends each batch's token contracts once, indexed per address; native is -1", async () => {
    const network = `watch-${process.pid}-${networks++}`;
    const usdt = "0x00000000000000000000000000000000000000aa";
    const usdc = "0x00000000000000000000000000000000000000bb";
    for (const [i, contract] of [usdt, "", usdc, usdt].entries()) {
      const t = await watchedTrade(network, `0xc${i}`, i, 3_600);
      await db.sql`UPDATE instant_trades SET contract = ${contract} WHERE id = ${t}`;
    }
    const s = stream(network);
    await eventually(() => s.updates.some((u) => u.snapshotComplete));
    const [batch] = s.updates;
    expect(batch!.add.contracts.sort()).toEqual([usdt, usdc]);
    expect(["0xc0", "0xc1", "0xc2", "0xc3"].map((a) => s.sent(a)[0]!.contract)).toEqual([usdt, null, usdc, usdt]);
    expect(["0xc0", "0xc1", "0xc2", "0xc3"].map((a) => s.sent(a)[0]!.derivationIndex)).toEqual([0, 1, 2, 3]);
  });

  // The snapshot is read in chunks of 5,000 derivation indexes, each chunk's columns joined by
  // Postgres: every address must come once, its contract, deadline and index its own, across
  // chunk boundaries, gaps in the indexes and more chunks than one cursor read.
  it("sends a snapshot of many chunks with each address's own fields, each address once", async () => {
    const network = `watch-${process.pid}-${networks++}`;
    const usdt = "0x00000000000000000000000000000000000000aa";
    // Three trades, addresses spread over them round-robin: a misaligned column shows as a
    // contract or deadline of another trade.
    const trades: string[] = [];
    for (const [i, contract] of [usdt, "", usdt].entries()) {
      const t = await insertTrade(db.sql, { network, expiresInSeconds: 1800 + i * 7 });
      await db.sql`UPDATE instant_trades SET contract = ${contract} WHERE id = ${t}`;
      trades.push(t);
    }
    const until = await db.sql<{ id: string; ms: number; contract: string }[]>`
      SELECT id, (extract(epoch FROM monitoring_until) * 1000)::float8 AS ms, contract FROM instant_trades WHERE id IN ${db.sql(trades)}`;
    const byTrade = new Map(until.map((r) => [r.id, r]));
    // Indexes 0–59,999 and 130,000–134,999, every third one left unassigned (AVAILABLE).
    const indexes = [...Array.from({ length: 60_000 }, (_, i) => i), ...Array.from({ length: 5_000 }, (_, i) => 130_000 + i)];
    await db.sql`
      INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status, trade_id, assigned_at)
      SELECT ${network}, 'addr' || i, i, 'm/0/' || i, CASE WHEN i % 3 = 2 THEN 'AVAILABLE' ELSE 'ASSIGNED' END,
             CASE WHEN i % 3 = 2 THEN NULL ELSE (${trades}::text[])[1 + i % 3] END, now() - interval '1 hour'
        FROM unnest(${indexes}::int8[]) AS i`;
    const s = stream(network);
    await eventually(() => s.updates.some((u) => u.snapshotComplete), { timeout: 15_000 });
    const sent = s.updates.flatMap((u) => rows(u.add));
    const assigned = indexes.filter((i) => i % 3 !== 2);
    expect(sent).toHaveLength(assigned.length);
    expect(new Set(sent.map((r) => r.address)).size).toBe(assigned.length);
    expect(s.updates.every((u) => u.add.address.length <= 5_000)).toBe(true);
    const wrong = sent.filter((r) => {
      const i = Number(r.address.slice(4));
      const trade = byTrade.get(trades[i % 3]!)!;
      return r.derivationIndex !== i || r.watchUntilMs !== trade.ms || r.contract !== (trade.contract === "" ? null : trade.contract);
    });
    expect(wrong).toEqual([]);
  });

  // The first poll looked back from the snapshot's end: with a snapshot longer than the look-back
  // (a million addresses), an address assigned while it streamed was never sent.
  it("sends an address assigned while a long snapshot was read", async () => {
    const network = `watch-${process.pid}-${networks++}`;
    await watchedTrade(network, "0xb1", 1);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    cleanups.push(() => void vi.useRealTimers());
    // An address committed while the snapshot was read, not in it; the snapshot "takes" two
    // minutes on the coordinator's clock.
    const s = stream(network, async (u) => {
      if (!u.snapshotComplete) return;
      await watchedTrade(network, "0xb2", 2);
      vi.setSystemTime(Date.now() + 120_000);
    });
    await eventually(() => s.updates.some((u) => u.snapshotComplete));
    await eventually(() => s.sent("0xb2").length === 1, { timeout: 3_000 });
    expect(s.sent("0xb1")).toHaveLength(1);
  });

  // A NOTIFY sent while the LISTEN connection was down is lost; the address used to wait for the
  // next poll (WATCH_POLL_MS, 5 s), in which a fast chain's payment could be mined unwatched.
  it("looks again once LISTEN is back, so an address whose NOTIFY was lost is sent at once", async () => {
    const network = `watch-${process.pid}-${networks++}`;
    const s = stream(network, undefined, 600_000);
    await eventually(() => s.updates.some((u) => u.snapshotComplete));
    await watchedTrade(network, "0xc1", 1, 0, { notify: false });
    const dropped = await db.sql`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`;
    expect(dropped.length).toBeGreaterThan(0);
    await eventually(() => s.sent("0xc1").length === 1, { timeout: 10_000 });
  });
});
