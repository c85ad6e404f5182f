import { createLogger, PonteError } from "@ponte/common";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { testDb } from "../_test/db.js";
import { insertTrade } from "../_test/fixtures.js";
import { acquireLease, type Identity } from "../agent/lease.js";
import { loadAssetRegistry } from "../quote/registry.js";
import { createDepositReporting, KEEP_BLOCKS, PRUNE_EVERY, type DepositReporting, type ReportedBlock } from "./report.js";

// The coordinator side of deposits, driven the way an agent drives it (anvil:USDT, 2 confirmations).
let db: Awaited<ReturnType<typeof testDb>>;
let rep: DepositReporting;
let id: Identity;
const registry = loadAssetRegistry(fileURLToPath(new URL("../../assets/local.json", import.meta.url)), {
  contractOverrides: { "anvil:USDT": "0x00000000000000000000000000000000000000aa" },
});
const USDT = "0x00000000000000000000000000000000000000aa";

beforeAll(async () => {
  db = await testDb();
  rep = createDepositReporting({
    sql: db.sql,
    ctx: {
      registry,
      transitions: { subjectPrefix: "ponte.trade" },
      tolerance: { underBps: 50n, overBps: 50n },
      logger: createLogger({ name: "test", level: "silent" }),
    },
  });
});
afterAll(async () => {
  await db.close();
});

let height = 0n;
const hash = (h: bigint, fork = "a") => `0x${fork}${h.toString(16).padStart(63, "0")}`;
beforeEach(async () => {
  await db.sql`TRUNCATE chain_cursors, chain_blocks, agent_leases, deposits CASCADE`;
  const lease = await acquireLease(db.sql, "anvil", "agent-a", 10_000);
  id = { network: "anvil", agentId: "agent-a", leaseEpoch: lease.epoch };
  height = 0n;
  await rep.reportBlocks(id, [block(0n, [])], 0n, 0n);
});

function block(h: bigint, deps: { to: string; amount: bigint; ref: string; contract?: string }[], fork = "a", parentFork = fork): ReportedBlock {
  return {
    height: h,
    hash: hash(h, fork),
    parentHash: h === 0n ? "0x" : hash(h - 1n, parentFork),
    parentHeight: h === 0n ? 0n : h - 1n,
    deposits: deps.map((d) => ({ txRef: d.ref, txHash: d.ref.split(":")[0]!, address: d.to, contract: d.contract ?? USDT, amount: d.amount, fromAddress: "0xfrom", rbfSignaled: false })),
  };
}
/** Mines `n` blocks after the current one; finality = head − 1 (2 confirmations). */
async function mine(deps: Parameters<typeof block>[1] = [], n = 1) {
  for (let i = 0; i < n; i++) {
    height++;
    await rep.reportBlocks(id, [block(height, i === 0 ? deps : [])], height, height - 1n);
  }
}
async function tradeAt(address: string, opts: Parameters<typeof insertTrade>[1] = {}) {
  const tradeId = await insertTrade(db.sql, opts);
  await db.sql`UPDATE instant_trades SET deposit_address = ${address}, contract = ${USDT} WHERE id = ${tradeId}`;
  await db.sql`INSERT INTO deposit_addresses (network, address, derivation_index, derivation_path, status, trade_id)
               VALUES ('anvil', ${address}, ${Math.floor(Math.random() * 1e9)}, 'm/x', 'ASSIGNED', ${tradeId})`;
  return tradeId;
}
const status = async (tradeId: string) =>
  (await db.sql<{ status: string; received_amount: string; confirmed_amount: string }[]>`
    SELECT status, received_amount, confirmed_amount FROM instant_trades WHERE id = ${tradeId}`)[0]!;
const history = async (tradeId: string) =>
  (await db.sql<{ to_status: string }[]>`SELECT to_status FROM instant_trade_history WHERE trade_id = ${tradeId} ORDER BY version`).map((r) => r.to_status);

describe("deposits reported by an agent", () => {
  it("detects a deposit, then confirms it at the finality depth", async () => {
    const t = await tradeAt("0xd1");
    await mine([{ to: "0xd1", amount: 100_000_000n, ref: "0xt1:0" }]);
    expect(await status(t)).toMatchObject({ status: "DEPOSIT_DETECTED", received_amount: "100000000", confirmed_amount: "0" });
    await mine();
    expect((await status(t)).status).toBe("PAYMENT_CONFIRMED");
    expect(await history(t)).toEqual(["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
  });

  it("a deposit seen and final in the same report (catch-up) is confirmed at once", async () => {
    const t = await tradeAt("0xd7");
    height++;
    const b1 = block(height, [{ to: "0xd7", amount: 100_000_000n, ref: "0xc1:0" }]);
    height++;
    const b2 = block(height, []);
    await rep.reportBlocks(id, [b1, b2], height, height - 1n);
    expect((await status(t)).status).toBe("PAYMENT_CONFIRMED");
    expect(await history(t)).toEqual(["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
  });

  it("sums partial deposits and confirms when the total is within tolerance", async () => {
    const t = await tradeAt("0xd2");
    await mine([{ to: "0xd2", amount: 60_000_000n, ref: "0xp1:0" }], 3);
    expect(await status(t)).toMatchObject({ status: "DEPOSIT_DETECTED", confirmed_amount: "60000000" });
    await mine([{ to: "0xd2", amount: 39_600_000n, ref: "0xp2:0" }], 2); // 99.6 %: within 0.5 %
    expect(await status(t)).toMatchObject({ status: "PAYMENT_CONFIRMED", confirmed_amount: "99600000" });
  });

  it("a shortfall waits until the deadline, then the trade is UNDERPAID", async () => {
    const t = await tradeAt("0xd3");
    await mine([{ to: "0xd3", amount: 50_000_000n, ref: "0xu1:0" }], 3);
    expect((await status(t)).status).toBe("DEPOSIT_DETECTED");
    await db.sql`UPDATE instant_trades SET expires_at = now() - interval '1 second' WHERE id = ${t}`;
    await mine();
    expect((await status(t)).status).toBe("UNDERPAID");
  });

  it("a reorg before finality sends the trade back to PENDING; the deposit re-mined is confirmed once", async () => {
    const t = await tradeAt("0xd4");
    await mine();
    const ancestor = height;
    await mine([{ to: "0xd4", amount: 100_000_000n, ref: "0xr1:0" }]);
    expect((await status(t)).status).toBe("DEPOSIT_DETECTED");
    await rep.reportReorg(id, { height: ancestor, hash: hash(ancestor) }, ["0xr1:0"]);
    expect((await status(t)).status).toBe("PENDING");
    // The new chain has an empty block, then the deposit again.
    height = ancestor + 1n;
    await rep.reportBlocks(id, [block(height, [], "b", "a")], height, height - 1n);
    height++;
    await rep.reportBlocks(id, [block(height, [{ to: "0xd4", amount: 100_000_000n, ref: "0xr1:0" }], "b")], height, height - 1n);
    height++;
    await rep.reportBlocks(id, [block(height, [], "b")], height, height - 1n);
    expect((await status(t)).status).toBe("PAYMENT_CONFIRMED");
    expect(await history(t)).toEqual(["DEPOSIT_DETECTED", "PENDING", "DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    const [d] = await db.sql`SELECT count(*)::int AS n FROM deposits WHERE tx_ref = '0xr1:0'`;
    expect(d!.n).toBe(1);
  });

  it("a reorged deposit back in the mempool is unconfirmed: its old block never makes it final", async () => {
    const t = await tradeAt("0xd8");
    await mine();
    const ancestor = height;
    await mine([{ to: "0xd8", amount: 100_000_000n, ref: "0xm1:0" }]);
    await rep.reportReorg(id, { height: ancestor, hash: hash(ancestor) }, ["0xm1:0"]);
    expect((await status(t)).status).toBe("PENDING");
    // The transaction returned to the mempool (UTXO): seen again, unconfirmed.
    await rep.reportMempool(id, [{ txRef: "0xm1:0", txHash: "0xm1", address: "0xd8", contract: USDT, amount: 100_000_000n, fromAddress: "", rbfSignaled: false }], []);
    expect((await status(t)).status).toBe("DEPOSIT_DETECTED");
    // The new chain grows far past the old height without it: still not final, never paid.
    height = ancestor;
    for (let i = 0; i < 5; i++) {
      height++;
      await rep.reportBlocks(id, [block(height, [], "c", i === 0 ? "a" : "c")], height, height - 1n);
    }
    const [d] = await db.sql<{ status: string; block_height: bigint | null }[]>`SELECT status, block_height FROM deposits WHERE tx_ref = '0xm1:0'`;
    expect(d).toEqual({ status: "SEEN", block_height: null });
    expect(await status(t)).toMatchObject({ status: "DEPOSIT_DETECTED", confirmed_amount: "0" });
  });

  it("a refused reorg (no lease, an ancestor not on the stored chain, no cursor) changes nothing", async () => {
    const t = await tradeAt("0xd9");
    await mine();
    const ancestor = height;
    await mine([{ to: "0xd9", amount: 100_000_000n, ref: "0xf1:0" }], 3);
    expect((await status(t)).status).toBe("PAYMENT_CONFIRMED");
    const state = async () => ({
      trade: await status(t),
      deposits: await db.sql`SELECT tx_ref, status, block_height, block_hash FROM deposits ORDER BY tx_ref`,
      blocks: await db.sql`SELECT height, hash FROM chain_blocks WHERE network = 'anvil' ORDER BY height`,
      cursor: await db.sql`SELECT height, hash, finalized_height FROM chain_cursors WHERE network = 'anvil'`,
      history: await history(t),
    });
    const before = await state();
    const stale = { ...id, leaseEpoch: id.leaseEpoch + 7n };
    await expect(rep.reportReorg(stale, { height: ancestor, hash: hash(ancestor) }, ["0xf1:0"])).rejects.toMatchObject({ code: "LEASE_LOST" });
    await expect(rep.reportReorg(id, { height: ancestor, hash: hash(ancestor, "z") }, ["0xf1:0"])).rejects.toMatchObject({
      code: "INVALID_STATE",
      details: { stored_hash: hash(ancestor) },
    });
    expect(await state()).toEqual(before);
    await db.sql`DELETE FROM chain_cursors WHERE network = 'anvil'`;
    await expect(rep.reportReorg(id, { height: ancestor, hash: hash(ancestor) }, ["0xf1:0"])).rejects.toMatchObject({ code: "INVALID_STATE" });
    expect(await state()).toEqual({ ...before, cursor: [] });
  });

  it("ignores other assets, records late deposits, and repeated reports count once", async () => {
    const t = await tradeAt("0xd5");
    await mine([{ to: "0xd5", amount: 100_000_000n, ref: "0xo1:0", contract: "0x00000000000000000000000000000000000000bb" }], 3);
    expect((await status(t)).status).toBe("PENDING");
    const b = block(height + 1n, [{ to: "0xd5", amount: 100_000_000n, ref: "0xo2:0" }]);
    height++;
    await rep.reportBlocks(id, [b], height, height - 1n);
    await rep.reportBlocks(id, [b], height, height - 1n);
    await mine();
    expect(await status(t)).toMatchObject({ status: "PAYMENT_CONFIRMED", confirmed_amount: "100000000" });
    const late = await tradeAt("0xd6", { status: "EXPIRED" });
    await mine([{ to: "0xd6", amount: 5n, ref: "0xl1:0" }], 2);
    expect((await status(late)).status).toBe("EXPIRED");
    const [d] = await db.sql`SELECT late, status FROM deposits WHERE tx_ref = '0xl1:0'`;
    expect(d).toMatchObject({ late: true, status: "CONFIRMED" });
  });

  it("refuses a block that does not extend the cursor, and a caller without the lease", async () => {
    const err = await rep.reportBlocks(id, [block(height + 1n, [], "z", "z")], height + 1n, 0n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PonteError);
    expect((err as PonteError).code).toBe("INVALID_STATE");
    const stale = { ...id, leaseEpoch: id.leaseEpoch + 7n };
    await expect(rep.reportBlocks(stale, [block(height + 1n, [])], height + 1n, 0n)).rejects.toMatchObject({ code: "LEASE_LOST" });
  });

  it("a batch of blocks carrying many trades' deposits (and a repeated one) moves each trade once per step", async () => {
    const trades = await Promise.all(Array.from({ length: 30 }, (_, i) => tradeAt(`0xb${i}`)));
    const blocks: ReportedBlock[] = [];
    for (let i = 0; i < 3; i++) {
      height++;
      const deps = trades.slice(i * 10, i * 10 + 10).map((_, j) => ({ to: `0xb${i * 10 + j}`, amount: 100_000_000n, ref: `0xbb${i * 10 + j}:0` }));
      // The agent repeats a deposit within its report: it is stored and counted once.
      if (i === 2) deps.push(deps[0]!);
      blocks.push(block(height, deps));
    }
    const before = blocks.slice(0, 2);
    await rep.reportBlocks(id, before, height - 1n, height - 3n);
    // The next report starts with a block already stored (a retry after a lost acknowledgement).
    height++;
    await rep.reportBlocks(id, [blocks[1]!, blocks[2]!, block(height, [])], height, height - 1n);
    for (const t of trades) {
      expect(await status(t)).toMatchObject({ status: "PAYMENT_CONFIRMED", received_amount: "100000000", confirmed_amount: "100000000" });
      expect(await history(t)).toEqual(["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED"]);
    }
    const [n] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM deposits WHERE tx_ref LIKE '0xbb%'`;
    expect(n!.n).toBe(30);
  });

  it("keeps the last KEEP_BLOCKS blocks, deleting older ones each time the cursor passes a multiple of PRUNE_EVERY", async () => {
    const kept = async () =>
      (await db.sql<{ lo: string; hi: string; n: number }[]>`
        SELECT min(height)::text AS lo, max(height)::text AS hi, count(*)::int AS n FROM chain_blocks WHERE network = 'anvil'`)[0]!;
    const reportTo = async (top: bigint) => {
      while (height < top) {
        const blocks: ReportedBlock[] = [];
        for (let i = 0; i < 250 && height < top; i++) blocks.push(block(++height, []));
        await rep.reportBlocks(id, blocks, height, height - 1n);
      }
    };
    await reportTo(KEEP_BLOCKS - 1n);
    expect(await kept()).toEqual({ lo: "0", hi: String(KEEP_BLOCKS - 1n), n: Number(KEEP_BLOCKS) });
    // One report from 1,999 to 2,050 passes 2,000: everything below 2,050 − KEEP_BLOCKS goes.
    const mid = KEEP_BLOCKS + PRUNE_EVERY / 2n;
    await reportTo(mid);
    expect(await kept()).toEqual({ lo: "50", hi: String(mid), n: Number(KEEP_BLOCKS) + 1 });
    // Block by block up to 2,099: nothing is deleted until the cursor reaches 2,100.
    while (height < KEEP_BLOCKS + PRUNE_EVERY - 1n) await rep.reportBlocks(id, [block(++height, [])], height, height - 1n);
    expect(await kept()).toEqual({ lo: "50", hi: String(height), n: Number(height) - 49 });
    await rep.reportBlocks(id, [block(++height, [])], height, height - 1n);
    expect(await kept()).toEqual({ lo: String(PRUNE_EVERY), hi: String(height), n: Number(KEEP_BLOCKS) + 1 });
    // A repeated report of a kept block is still recognised, and a reorg to a kept ancestor works.
    await rep.reportBlocks(id, [block(height - 5n, [])], height, height - 1n);
    await rep.reportReorg(id, { height: PRUNE_EVERY + 1n, hash: hash(PRUNE_EVERY + 1n) }, []);
    expect(await kept()).toEqual({ lo: String(PRUNE_EVERY), hi: String(PRUNE_EVERY + 1n), n: 2 });
  });

  it("a trade with a deposit waiting for confirmations keeps its amounts current without changing state", async () => {
    const t = await tradeAt("0xe1");
    const other = await tradeAt("0xe2");
    await mine([{ to: "0xe1", amount: 30_000_000n, ref: "0xe1a:0" }], 3);
    expect(await status(t)).toMatchObject({ status: "DEPOSIT_DETECTED", received_amount: "30000000", confirmed_amount: "30000000" });
    await mine([{ to: "0xe1", amount: 20_000_000n, ref: "0xe1b:0" }]);
    expect(await status(t)).toMatchObject({ status: "DEPOSIT_DETECTED", received_amount: "50000000", confirmed_amount: "30000000" });
    await mine();
    expect(await status(t)).toMatchObject({ status: "DEPOSIT_DETECTED", received_amount: "50000000", confirmed_amount: "50000000" });
    expect(await history(t)).toEqual(["DEPOSIT_DETECTED"]);
    expect((await status(other)).status).toBe("PENDING");
  });

  it("leaves a custodial sell alone: its transfer moves it, not the blocks", async () => {
    const t = await insertTrade(db.sql, { status: "DEPOSIT_DETECTED" });
    await db.sql`UPDATE instant_trades SET source = 'custodial' WHERE id = ${t}`;
    await mine([], 3);
    expect((await status(t)).status).toBe("DEPOSIT_DETECTED");
    expect(await history(t)).toEqual([]);
  });
});
