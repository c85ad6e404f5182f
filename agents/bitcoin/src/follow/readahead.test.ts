import { createAgentMetrics, type BlockRef, type CursorState, type FollowerContext, type ProcessedBlock, type ReorgNotice, type WatchEntry, type WatchView } from "@ponte/agent-runtime";
import { eventually } from "@ponte/common/testing";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { regtestConfig } from "../_test/agent.js";
import { closeLitecoind, RPC_PASSWORD, RPC_USER, startLitecoind, type Litecoind } from "../_test/litecoind.js";
import { createUtxoRpc, type RpcRequest, type UtxoRpc } from "../rpc/index.js";
import { createScriptReader } from "../script/index.js";
import { CHAINS } from "../config/index.js";
import { createUtxoFollower } from "./index.js";

// The follower reads batch n+1 while batch n is being reported. These tests hold a report until
// the next batch has been read ahead, reorganise the chain under it, and check what a
// coordinator would have stored: every block of the active chain once, linked, nothing skipped.
let node: Litecoind;
let payee: string;

beforeAll(async () => {
  node = await startLitecoind();
  payee = await node.wallet<string>("getnewaddress", ["", "bech32"]);
}, 60_000);
afterAll(async () => {
  await closeLitecoind(node);
});

const watch: WatchView = {
  get: (a): WatchEntry | undefined => (a === payee ? { address: payee, contract: null, watchUntil: null, derivationIndex: 0 } : undefined),
  size: 1,
  synced: true,
  generation: 1,
  waitSynced: () => Promise.resolve(),
};

type Event = { kind: "report"; blocks: ProcessedBlock[] } | { kind: "reorg"; notice: ReorgNotice };

/**
 * A follower from `from` in batches of 5 against a recording coordinator. hold(n) runs inside
 * the n-th report (1-based) before it is acknowledged; `reads` lists the hashes of every block
 * read, in order.
 */
function follow(from: bigint, hold: (n: number, reads: string[]) => Promise<void>) {
  const rpc = createUtxoRpc({
    url: node.url,
    auth: { kind: "password", user: RPC_USER, password: RPC_PASSWORD },
    timeoutMs: 5_000,
    maxInFlight: 4,
    batchSize: 10,
    logger: pino({ level: "silent" }),
  });
  const reads: string[] = [];
  const traced: UtxoRpc = {
    call: (method, params) => rpc.call(method, params),
    batch: (requests) => rpc.batch(requests),
    async batchOrThrow<T>(requests: RpcRequest[]) {
      const out = await rpc.batchOrThrow<T>(requests);
      for (const r of requests) if (r.method === "getblock") reads.push(r.params[0] as string);
      return out;
    },
    rest: (path) => rpc.rest(path),
    endpoint: rpc.endpoint,
  };
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const events: Event[] = [];
  let cursor: BlockRef | null = null;
  let reports = 0;
  const ac = new AbortController();
  const ctx: FollowerContext = {
    network: "litecoin-regtest",
    logger,
    metrics: createAgentMetrics(new Registry(), "litecoin-regtest"),
    signal: ac.signal,
    epoch: 1n,
    cursor: { block: null, finalizedHeight: 0n },
    getCursor: async (): Promise<CursorState> => ({ block: cursor, finalizedHeight: 0n }),
    watch,
    async report(blocks, _head, finalizedHeight) {
      await hold(++reports, reads);
      events.push({ kind: "report", blocks });
      cursor = { height: blocks.at(-1)!.height, hash: blocks.at(-1)!.hash };
      return { block: cursor, finalizedHeight };
    },
    async reportReorg(notice) {
      events.push({ kind: "reorg", notice });
      cursor = notice.ancestor;
    },
    reportMempool: async () => 0,
  };
  const follower = createUtxoFollower({ logger }, { config: regtestConfig(node, { startHeight: from, batchSize: 5, confirmations: 6 }), rpc: traced, readScript: createScriptReader(CHAINS["litecoin-regtest"], ["p2wpkh"]), mempool: false })(ctx);
  const running = follower.run();
  return {
    events,
    reads,
    logs,
    cursor: () => cursor,
    async stop() {
      ac.abort();
      await running;
    },
  };
}

/** Blocks of `n` heights, each paying `payee` once (mined on a fresh address). */
async function mineWithDeposits(n: number): Promise<string[]> {
  const hashes: string[] = [];
  for (let i = 0; i < n; i++) {
    await node.pay({ [payee]: 1_000_000n + BigInt(i) });
    hashes.push(...(await node.mine(1)));
  }
  return hashes;
}

/** What a coordinator stores from the events (height → block), checking each report links to its cursor. */
function replay(events: Event[], from: bigint) {
  const stored = new Map<bigint, ProcessedBlock>();
  let tip: BlockRef | null = null;
  for (const e of events) {
    if (e.kind === "reorg") {
      for (const h of [...stored.keys()]) if (h > e.notice.ancestor.height) stored.delete(h);
      tip = e.notice.ancestor;
      continue;
    }
    const first = e.blocks[0]!;
    if (tip) expect({ height: first.height - 1n, hash: first.parentHash }).toEqual(tip);
    else expect(first.height).toBe(from);
    for (const b of e.blocks) stored.set(b.height, b);
    tip = { height: e.blocks.at(-1)!.height, hash: e.blocks.at(-1)!.hash };
  }
  return stored;
}

/** stored is the node's active chain from..head, and holds each of its outputs paying payee once. */
async function expectActiveChain(stored: Map<bigint, ProcessedBlock>, from: bigint) {
  const head = await node.height();
  expect([...stored.keys()].sort((a, b) => Number(a - b))).toEqual(Array.from({ length: head - Number(from) + 1 }, (_, i) => from + BigInt(i)));
  const paid: string[] = [];
  for (const [h, b] of stored) {
    const hash = await node.rpc<string>("getblockhash", [Number(h)]);
    expect(b.hash).toBe(hash);
    const block = await node.rpc<{ tx: { txid: string; vout: { n: number; scriptPubKey: { addresses?: string[] } }[] }[] }>("getblock", [hash, 2]);
    for (const tx of block.tx) for (const o of tx.vout) if (o.scriptPubKey.addresses?.includes(payee)) paid.push(`${tx.txid}:${o.n}`);
  }
  const credited = [...stored.values()].flatMap((b) => b.deposits.map((d) => d.txRef));
  expect(credited.sort()).toEqual(paid.sort());
  expect(paid.length).toBeGreaterThan(0);
}

const reported = (events: Event[]) => events.flatMap((e) => (e.kind === "report" ? e.blocks : []));

/**
 * 20 blocks with deposits, followed from their first; inside report number `during`, once block
 * `readAhead` (an index into them) has been read ahead, the chain is replaced from block
 * `invalidate` by `mine` new ones. Returns once the follower's cursor is the new tip, with the
 * chain its reports built checked against the node's.
 */
async function reorgDuringReport(o: { during: number; readAhead: number; invalidate: number; mine: number }) {
  const from = BigInt(await node.height()) + 1n;
  const old = await mineWithDeposits(20);
  const f = follow(from, async (n, reads) => {
    if (n !== o.during) return;
    await eventually(() => expect(reads).toContain(old[o.readAhead]), { timeout: 10_000 });
    await node.rpc("invalidateblock", [old[o.invalidate]]);
    await node.mine(o.mine);
  });
  try {
    await eventually(async () => expect(f.cursor()?.hash).toBe(await node.rpc<string>("getbestblockhash")), { timeout: 30_000, interval: 100 });
  } finally {
    await f.stop();
  }
  await expectActiveChain(replay(f.events, from), from);
  return { from, old, f };
}

describe("UTXO follower read-ahead on litecoind regtest", () => {
  it("a reorg above the cursor while the next batch is read ahead: the read-ahead is dropped, every block reported once", async () => {
    // Inside the first report (blocks from..from+4): the next batch has been read ahead; then its
    // third block and everything above it leave the chain for a longer one.
    const { old, f } = await reorgDuringReport({ during: 1, readAhead: 9, invalidate: 7, mine: 20 });
    expect(f.events.some((e) => e.kind === "reorg")).toBe(false);
    const blocks = reported(f.events);
    expect(new Set(blocks.map((b) => b.hash)).size).toBe(blocks.length);
    for (const stale of old.slice(7)) expect(blocks.some((b) => b.hash === stale)).toBe(false);
    // The stale read-ahead was read, then read again from the new chain.
    expect(f.reads.filter((h) => h === old[5])).toHaveLength(2);
    expect(f.logs.filter((l) => l.msg === "The chain moved under the read-ahead; reading again")).toHaveLength(1);
    expect(new Set(blocks.flatMap((b) => b.deposits.map((d) => d.txRef))).size).toBe(blocks.flatMap((b) => b.deposits).length);
  }, 90_000);

  it("a reorg below the cursor while the next batch is read ahead: one reorg report, then the new chain from the ancestor", async () => {
    // Inside the second report (from+5..from+9): the batch after it has been read ahead; then the
    // chain is replaced from from+3, below the cursor (from+4) and under the batch being reported.
    const { from, old, f } = await reorgDuringReport({ during: 2, readAhead: 14, invalidate: 3, mine: 25 });
    const reorgs = f.events.flatMap((e) => (e.kind === "reorg" ? [e.notice] : []));
    expect(reorgs).toHaveLength(1);
    const orphanedBlocks = reported(f.events).filter((b) => old.indexOf(b.hash) >= 3);
    expect(orphanedBlocks.map((b) => b.hash)).toEqual(old.slice(3, 10));
    expect(reorgs[0]).toMatchObject({ ancestor: { height: from + 2n, hash: old[2] }, depth: 7 });
    expect([...reorgs[0]!.orphanedTxRefs].sort()).toEqual(orphanedBlocks.flatMap((b) => b.deposits.map((d) => d.txRef)).sort());
    expect(reorgs[0]!.orphanedTxRefs).toHaveLength(7);
    // No block reported twice; the read-ahead of the old chain above the cursor never reported.
    const blocks = reported(f.events);
    expect(new Set(blocks.map((b) => b.hash)).size).toBe(blocks.length);
    for (const stale of old.slice(10)) expect(blocks.some((b) => b.hash === stale)).toBe(false);
    expect(f.reads.filter((h) => h === old[10])).toHaveLength(1);
  }, 90_000);
});
