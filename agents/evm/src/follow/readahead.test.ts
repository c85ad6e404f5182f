import {
  createAgentMetrics,
  type BlockRef,
  type CursorState,
  type FollowerContext,
  type ProcessedBlock,
  type ReorgNotice,
  type WatchEntry,
  type WatchView,
} from "@ponte/agent-runtime";
import { createRegistry, delay, PonteError } from "@ponte/common";
import { eventually } from "@ponte/common/testing";
import { Wallet } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anvilConfig } from "../_test/agent.js";
import { startAnvil, type Anvil } from "../_test/anvil.js";
import { silentLogger, testRpc } from "../_test/rpc.js";
import type { EvmConfig } from "../config/index.js";
import { createLogFetcher } from "../logs/index.js";
import type { HeadWatcher } from "../rpc/heads.js";
import type { EvmRpc } from "../rpc/index.js";
import { createEvmFollower } from "./index.js";

// The follower against anvil, with a stand-in coordinator that acknowledges (or refuses) each
// report when the test says so, and an RPC tap that records (and can hold) each batch read.

let anvil: Anvil;
let snapshot: string;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  anvil = await startAnvil();
  snapshot = await anvil.rpc<string>("evm_snapshot");
}, 60_000);
afterAll(async () => anvil?.stop());
afterEach(async () => {
  while (stops.length) await stops.pop()!();
  await anvil.rpc("evm_revert", [snapshot]);
  snapshot = await anvil.rpc<string>("evm_snapshot");
});

const watched = Wallet.createRandom().address;
const late = Wallet.createRandom().address;

/** Blocks base+1..base+n; at each offset in `pay` (1-based) a block paying `to[offset]` (default `watched`). */
async function chain(n: number, pay: number[], to: Record<number, string> = {}): Promise<{ base: bigint; refs: Map<number, string> }> {
  const base = await anvil.height();
  const refs = new Map<number, string>();
  let at = 0;
  for (const p of [...pay].sort((a, b) => a - b)) {
    if (p - 1 > at) await anvil.mine(p - 1 - at);
    const t = await anvil.wallet(0).sendTransaction({ to: to[p] ?? watched, value: 1_000n + BigInt(p) });
    await t.wait(1, 10_000);
    refs.set(p, `${t.hash.toLowerCase()}:native`);
    at = p;
  }
  if (n > at) await anvil.mine(n - at);
  expect(await anvil.height()).toBe(base + BigInt(n));
  return { base, refs };
}

const blockRef = async (h: bigint): Promise<BlockRef> => {
  const b = await anvil.provider.getBlock(Number(h));
  return { height: h, hash: b!.hash!.toLowerCase() };
};

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A watch set the test changes, as a re-snapshot would (a new generation). */
function mutableWatch(addresses: string[]) {
  const map = new Map<string, WatchEntry>();
  const add = (a: string) => map.set(a.toLowerCase(), { address: a, contract: null, watchUntil: null, derivationIndex: 0 } as WatchEntry);
  addresses.forEach(add);
  let generation = 1;
  const view: WatchView = {
    get: (a) => map.get(a.toLowerCase()),
    get size() {
      return map.size;
    },
    synced: true,
    get generation() {
      return generation;
    },
    waitSynced: async () => {},
  };
  return {
    view,
    resnapshot(extra: string) {
      add(extra);
      generation++;
    },
  };
}

/**
 * Records "read <offset>" / "read-done <offset>" for each full-block batch the processor asks for
 * (offset = first height - base) and holds the ones `hold` names until released.
 */
function tap(rpc: EvmRpc, base: bigint, events: string[]) {
  const holds = new Map<number, Deferred<void>>();
  const tapped: EvmRpc = {
    call: (m, p) => rpc.call(m, p),
    batch: (r) => rpc.batch(r),
    async batchOrThrow<T>(reqs: Parameters<EvmRpc["batchOrThrow"]>[0]): Promise<T[]> {
      const full = reqs[0]?.method === "eth_getBlockByNumber" && reqs[0].params[1] === true;
      const offset = full ? Number(BigInt(reqs[0]!.params[0] as string) - base) : 0;
      if (full) {
        events.push(`read ${offset}`);
        const h = holds.get(offset);
        holds.delete(offset);
        await h?.promise;
      }
      const out = await rpc.batchOrThrow<T>(reqs);
      if (full) events.push(`read-done ${offset}`);
      return out;
    },
    get endpoint() {
      return rpc.endpoint;
    },
  };
  return {
    rpc: tapped,
    hold(offset: number) {
      const d = deferred<void>();
      holds.set(offset, d);
      return () => d.resolve();
    },
  };
}

interface Report {
  blocks: ProcessedBlock[];
  reply: Deferred<CursorState>;
  answered: boolean;
}

/** Starts the follower from `base` with a stand-in coordinator; reports wait for ack()/refuse() unless `auto`. */
async function follow(base: bigint, o: { config?: Partial<EvmConfig>; watch?: WatchView } = {}) {
  const events: string[] = [];
  const logger = silentLogger();
  const { rpc: raw, abort } = testRpc(anvil.http);
  const t = tap(raw, base, events);
  const logs = createLogFetcher({ logger }, { rpc: t.rpc, contracts: [], maxRange: 1_000, network: "anvil" });
  const heads: HeadWatcher = {
    connected: false,
    latest: undefined,
    seq: 0,
    take: () => undefined,
    next: (ms, signal) => delay(ms, signal),
    dropConnection: () => {},
    stop: async () => {},
  };
  const config = anvilConfig(anvil, [], { batchSize: 10, pollIntervalMs: 50, ...o.config });
  const start = await blockRef(base);
  /** The stand-in coordinator's stored chain: height → hash. */
  const stored = new Map<bigint, string>();
  let cursor: BlockRef = start;
  const reports: Report[] = [];
  const reorgs: ReorgNotice[] = [];
  const reported: string[] = [];
  /** Reports that did not start right after the stand-in's cursor (offsets): none expected. */
  const unlinked: number[] = [];
  let auto = false;
  const accept = (r: Report) => {
    r.answered = true;
    const last = r.blocks[r.blocks.length - 1]!;
    for (const b of r.blocks) stored.set(b.height, b.hash);
    cursor = { height: last.height, hash: last.hash };
    events.push(`ack ${Number(r.blocks[0]!.height - base)}`);
    r.reply.resolve({ block: cursor, finalizedHeight: 0n });
  };
  const ac = new AbortController();
  const ctx: FollowerContext = {
    network: "anvil",
    logger,
    metrics: createAgentMetrics(createRegistry("evm-readahead-test"), "anvil"),
    signal: ac.signal,
    epoch: 1n,
    cursor: { block: start, finalizedHeight: 0n },
    getCursor: async () => ({ block: cursor, finalizedHeight: 0n }),
    watch: o.watch ?? mutableWatch([watched]).view,
    report: (blocks) => {
      // The coordinator's own check: a report starts right after its cursor.
      if (blocks[0]!.height !== cursor.height + 1n || blocks[0]!.parentHash !== cursor.hash) {
        unlinked.push(Number(blocks[0]!.height - base));
        return Promise.reject(new PonteError("INVALID_STATE", "not after the cursor"));
      }
      const r: Report = { blocks, reply: deferred(), answered: false };
      reports.push(r);
      for (const b of blocks) for (const d of b.deposits) reported.push(d.txRef);
      events.push(`report ${Number(blocks[0]!.height - base)}`);
      if (auto) accept(r);
      return r.reply.promise;
    },
    reportReorg: async (notice) => {
      reorgs.push(notice);
      for (const h of [...stored.keys()]) if (h > notice.ancestor.height) stored.delete(h);
      cursor = notice.ancestor;
    },
    reportMempool: async () => 0,
  };
  const run = createEvmFollower({ logger }, { config, rpc: t.rpc, heads, logs })(ctx).run();
  // An unexpected end fails the test at stop(); the lease test awaits `run` itself.
  run.catch(() => {});
  const stop = async () => {
    ac.abort();
    for (const r of reports) r.reply.reject(new PonteError("UNAVAILABLE", "test over"));
    await run.catch(() => {});
    abort();
  };
  stops.push(stop);
  return {
    events,
    reports,
    reorgs,
    reported,
    stored,
    run,
    hold: t.hold,
    /** Acknowledges the k-th report (1-based). */
    ack: (k: number) => accept(reports[k - 1]!),
    /** Answers the k-th report with another cursor `at` (below its last block): the coordinator stored up to there. */
    ackAt(k: number, at: BlockRef) {
      const r = reports[k - 1]!;
      r.answered = true;
      for (const b of r.blocks) if (b.height <= at.height) stored.set(b.height, b.hash);
      cursor = at;
      events.push(`ack-at ${Number(at.height - base)}`);
      r.reply.resolve({ block: at, finalizedHeight: 0n });
    },
    /** Refuses the k-th report with `code`; the coordinator's cursor is then `at`. */
    refuse(k: number, code: "INVALID_STATE" | "LEASE_LOST", at?: BlockRef) {
      if (at) {
        cursor = at;
        for (const h of [...stored.keys()]) if (h > at.height) stored.delete(h);
      }
      const r = reports[k - 1]!;
      r.answered = true;
      events.push(`refuse ${Number(r.blocks[0]!.height - base)}`);
      r.reply.reject(new PonteError(code, `refused: ${code}`, { cursor_height: at?.height.toString() }));
    },
    /** From now on every report is acknowledged at once (and the pending ones now). */
    autoAck() {
      auto = true;
      for (const r of reports) if (!r.answered) accept(r);
    },
    /** The stand-in stored every block up to the node's head, each as the node has it. */
    async atHead() {
      const tip = await anvil.height();
      await eventually(() => cursor.height === tip, { timeout: 10_000 });
      expect(unlinked).toEqual([]);
      for (let h = base + 1n; h <= tip; h++) expect(stored.get(h), `block ${h}`).toBe((await blockRef(h)).hash);
    },
  };
}

const firstIndex = (events: string[], e: string) => {
  const i = events.indexOf(e);
  expect(i, e).toBeGreaterThanOrEqual(0);
  return i;
};

describe("EVM follower read-ahead (anvil, stand-in coordinator)", () => {
  it("reads the next catch-up batch while one is reported, one batch ahead at most, and none near the head", async () => {
    const { base, refs } = await chain(43, [5, 15, 25, 35, 42]);
    const f = await follow(base);
    // Batches 1-10, 11-20, 21-30, 31-40 (deep: the next one is read during the report), 41-43.
    for (const k of [1, 2, 3]) {
      await eventually(() => f.reports.length === k);
      await eventually(() => f.events.includes(`read-done ${k * 10 + 1}`));
      // Read, not reported: the next report waits for this acknowledgement.
      expect(f.reports).toHaveLength(k);
      expect(f.events).not.toContain(`read ${k * 10 + 11}`);
      f.ack(k);
    }
    await eventually(() => f.reports.length === 4);
    f.ack(4);
    await eventually(() => f.reports.length === 5);
    f.ack(5);
    await f.atHead();
    expect(f.reports.map((r) => [Number(r.blocks[0]!.height - base), r.blocks.length])).toEqual([
      [1, 10],
      [11, 10],
      [21, 10],
      [31, 10],
      [41, 3],
    ]);
    expect(f.reported).toEqual([...refs.values()]);
    // Within AT_HEAD of the head (41 of 43), the batch is read only after the acknowledgement.
    expect(firstIndex(f.events, "read 41")).toBeGreaterThan(firstIndex(f.events, "ack 31"));
    // Each batch read once.
    expect(f.events.filter((e) => e.startsWith("read "))).toEqual(["read 1", "read 11", "read 21", "read 31", "read 41"]);
  });

  it("walks back a reorg that the read-ahead batch shows (it does not link to the acknowledged block)", async () => {
    const { base, refs } = await chain(30, [9, 12, 25]);
    // Finality deeper than the reorg: the walk back finds the ancestor in the window.
    const f = await follow(base, { config: { finality: { kind: "confirmations", confirmations: 40 } } });
    const release = f.hold(11);
    await eventually(() => f.reports.length === 1 && f.events.includes("read 11"));
    // Blocks 9..30 replaced while 1-10 is reported and the next batch is being read.
    await anvil.rpc("anvil_reorg", [22, []]);
    release();
    await eventually(() => f.events.includes("read-done 11"));
    f.autoAck();
    await eventually(() => f.reorgs.length === 1);
    expect(f.reorgs[0]).toMatchObject({ ancestor: await blockRef(base + 8n), orphanedTxRefs: [refs.get(9)], depth: 2 });
    await f.atHead();
    // The read-ahead batch (the new chain's 11-20) did not link to the acknowledged block 10: it
    // was dropped for the walk back, and the new chain read from the ancestor.
    expect(f.reports.map((r) => Number(r.blocks[0]!.height - base))).toEqual([1, 9, 19, 29]);
    expect(f.reported.filter((r) => r === refs.get(12))).toHaveLength((await anvil.provider.getTransactionReceipt(refs.get(12)!.split(":")[0]!)) ? 1 : 0);
  });

  it("reads a batch again when the watch set's generation changed after it was read ahead", async () => {
    const w = mutableWatch([watched]);
    const { base, refs } = await chain(30, [5, 15], { 15: late });
    const f = await follow(base, { watch: w.view });
    await eventually(() => f.reports.length === 1 && f.events.includes("read-done 11"));
    // A re-snapshot brings the address paid in block 15 after 11-20 was scanned without it.
    w.resnapshot(late);
    f.autoAck();
    await f.atHead();
    expect(f.events.filter((e) => e === "read 11")).toHaveLength(2);
    expect(f.reported).toEqual([refs.get(5), refs.get(15)]);
  });

  it("drops the read-ahead batch on a cursor mismatch and resumes from the coordinator's cursor", async () => {
    const { base, refs } = await chain(40, [3, 8, 23]);
    const f = await follow(base);
    await eventually(() => f.reports.length === 1);
    f.ack(1);
    await eventually(() => f.reports.length === 2 && f.events.includes("read-done 21"));
    // The coordinator's cursor went back to block 5 (restored from a backup).
    f.refuse(2, "INVALID_STATE", await blockRef(base + 5n));
    f.autoAck();
    await f.atHead();
    expect(f.reports.map((r) => Number(r.blocks[0]!.height - base))).toEqual([1, 11, 6, 16, 26, 36]);
    expect(f.reported).toEqual([refs.get(3), refs.get(8), refs.get(8), refs.get(23)]);
  });

  it("drops the read-ahead batch when the coordinator acknowledges another block", async () => {
    const { base, refs } = await chain(40, [3, 14]);
    const f = await follow(base);
    await eventually(() => f.reports.length === 1 && f.events.includes("read-done 11"));
    f.ackAt(1, await blockRef(base + 7n));
    f.autoAck();
    await f.atHead();
    // 11-20 was read after block 10, not 7: read again from 8, and no reorg.
    expect(f.reports.map((r) => Number(r.blocks[0]!.height - base))).toEqual([1, 8, 18, 28, 38]);
    expect(f.reorgs).toEqual([]);
    expect(f.reported).toEqual([refs.get(3), refs.get(14)]);
  });

  it("ends the term on a lost lease with a batch still being read ahead", async () => {
    const { base } = await chain(30, []);
    const f = await follow(base);
    const release = f.hold(11);
    await eventually(() => f.reports.length === 1 && f.events.includes("read 11"));
    f.refuse(1, "LEASE_LOST");
    await expect(f.run).rejects.toMatchObject({ code: "LEASE_LOST" });
    release();
    await eventually(() => f.events.includes("read-done 11"));
    expect(f.reports).toHaveLength(1);
  });
});
