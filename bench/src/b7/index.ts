import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import { cpuMeter } from "../core/cpu.js";
import { absMax, compare, le, percentile, type Benchmark, type Row } from "../core/result.js";
import { startEvmAgent, waitFollowing } from "../infra/agent.js";
import { depositChain, randomAddress, type PlannedDeposit } from "../infra/deposits.js";
import { insertTrades, stockPool } from "../infra/fixtures.js";
import { seedSellers, startPixProvider, transfersByTag } from "../infra/payouts.js";
import { startCoordinator } from "../infra/ponte.js";
import { withAnvilRig } from "../infra/rig.js";

/** Reorgs go 1–5 blocks deep; the agent's finality rule is one more, so no orphaned deposit is ever final. */
const MAX_DEPTH = 5;
const FINALITY = MAX_DEPTH + 1;

interface Cycle extends PlannedDeposit {
  depth: number;
  kind: "drop" | "replace";
  tradeId: string;
}

/**
 * B7 reorg handling on anvil: the real EVM agent and coordinator (paying through the Stark Bank
 * stand-in) follow a chain that is reorganised 200 times, 1–5 blocks deep (`anvil_reorg`). Each
 * cycle pays one trade in a block, mines the block to `depth`, waits until the agent has
 * reported it, then replaces the last `depth` blocks: without the deposit (drop), or with the
 * same payment re-sent in another of the new blocks (replace). Rollback latency runs from
 * the node announcing the new chain (its first new head, or `anvil_reorg` returning if that
 * came first) to the commit that leaves the trade right (drop: PENDING, its deposit
 * REORGED; replace: DEPOSIT_DETECTED on a deposit in the new block), seen by LISTEN on the
 * coordinator's NOTIFY. The baseline is the same agent's detection latency (B5's figure: block
 * mined → DEPOSIT_DETECTED committed), measured on the same run's deposit blocks. At the end the
 * chain is mined past finality: replaced deposits must be paid once, dropped ones never (counted
 * at the provider), and every trade must be in its right state.
 */
/** A sleep of up to `ms` that `wake()` (a NOTIFY, a head) ends early. */
function napper() {
  let wake: (() => void) | undefined;
  return {
    wake: () => wake?.(),
    nap: (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      }).finally(() => (wake = undefined)),
  };
}

export const b7: Benchmark = {
  id: "B7",
  title: "reorg handling",
  async run(ctx) {
    const reorgs = ctx.smoke ? 4 : 200;
    const mode = ctx.smoke ? "smoke" : "full";
    return withAnvilRig(ctx, "b7", 3, async ({ logDir, workDir, anvil, db, sql, stops }) => {
      const chain = await depositChain(anvil);
      const plan = Array.from({ length: reorgs }, (_, i) => ({
        address: randomAddress(),
        native: (i >> 1) % 2 === 0,
        depth: 1 + (i % MAX_DEPTH),
        kind: i % 2 === 0 ? ("drop" as const) : ("replace" as const),
      }));
      const ids = await insertTrades(sql, { network: "anvil", tag: "b7b7", trades: plan.map((p) => chain.tradeSpec(p)) });
      const cycles: Cycle[] = plan.map((p, i) => ({ ...p, tradeId: ids[i]! }));
      await stockPool(sql, { network: "anvil", count: 250, firstIndex: reorgs + 1, tag: "b7" });
      await sql`ANALYZE`;

      const provider = await startPixProvider({ name: "b7-standin", logDir });
      stops.push(() => provider.stop());
      await seedSellers(sql, provider);
      const overrides = JSON.stringify({ "anvil:USDT": chain.tokenAddr });
      // Transfer planning off, as in B3: the trades' addresses are random, not derived from the
      // agent's seed, so each paid trade's sweep fails at the agent and is ordered again. That
      // came as a burst of failing orders every 2 s (25 at once by mid-run), which no desk has,
      // and the slowest detections and rollbacks of a run sat in those bursts.
      const coordinator = await startCoordinator({
        dbUrl: db.url,
        natsUrl: ctx.natsUrl,
        logDir,
        env: { ASSET_CONTRACT_OVERRIDES: overrides, TRANSFER_INTERVAL_MS: "2000000000", ...provider.coordinatorEnv },
      });
      stops.push(() => coordinator.stop());
      const agent = await startEvmAgent({
        name: "b7-agent", anvil, grpcTarget: coordinator.grpcTarget, workDir, logDir, overrides,
        config: { finality: { confirmations: FINALITY } },
      });
      stops.unshift(() => agent.kill("SIGTERM"));
      await waitFollowing(sql, "anvil");

      // Commits seen by LISTEN (the coordinator NOTIFYs ponte_outbox at commit).
      let lastNotify = 0;
      const notifies = napper();
      const listener = await sql.listen("ponte_outbox", () => {
        lastNotify = performance.now();
        notifies.wake();
      });
      stops.unshift(() => listener.unlisten());
      /**
       * When `check` first held: the NOTIFY that preceded the successful check if it came after
       * the last failed one began, else that check's start (a poll every 50 ms backs NOTIFY up).
       */
      const until = async (check: () => Promise<boolean>, since: number, timeoutMs: number): Promise<number | null> => {
        const deadline = performance.now() + timeoutMs;
        // A NOTIFY from before `since` (another commit) does not date a check that passes at once.
        let failedAt = since;
        for (;;) {
          const at = performance.now();
          const notified = lastNotify;
          if (await check()) return notified > failedAt ? notified : at;
          failedAt = at;
          if (performance.now() > deadline) return null;
          await notifies.nap(50);
        }
      };
      const statusOf = async (tradeId: string) => (await sql<{ status: string }[]>`SELECT status FROM instant_trades WHERE id = ${tradeId}`)[0]!.status;
      const tipHeight = async () => BigInt(await anvil.rpc<string>("eth_blockNumber"));
      const blockHash = async (height: bigint) =>
        (await anvil.rpc<{ hash: string }>("eth_getBlockByNumber", [`0x${height.toString(16)}`, false])).hash.toLowerCase();
      // A 1-wei self-transfer from an account that pays no trade.
      const fillerFrom = (await anvil.rpc<string[]>("eth_accounts"))[9]!;
      const filler = () => ({ from: fillerFrom, to: fillerFrom, value: "0x1", gas: "0x5208" });
      const caughtUp = async (height: bigint) => {
        const deadline = performance.now() + 15_000;
        for (;;) {
          const [c] = await sql<{ height: bigint }[]>`SELECT height FROM chain_cursors WHERE network = 'anvil'`;
          if (c && c.height >= height) return;
          if (performance.now() > deadline) throw new Error(`B7: the agent did not reach block ${height}`);
          await sleep(10);
        }
      };

      // When the node announces heads (the agent follows by subscription). After `evm_mine`
      // anvil has announced the block before the call returns; after an `anvil_reorg` its first
      // head came up to 25 ms after the call returned (p50 0.1, p90 13.5, p99 24.7 ms here).
      // Rollback is timed from that announcement, as detection is from the announced block: the
      // node's own delay is in neither (it is reported beside).
      const headArrivals: number[] = [];
      const heads = napper();
      const socket = new WebSocket(anvil.ws);
      await new Promise<void>((resolve, reject) => socket.once("open", () => resolve()).once("error", reject));
      socket.on("message", (data) => {
        if ((JSON.parse(data.toString()) as { method?: string }).method !== "eth_subscription") return;
        headArrivals.push(performance.now());
        heads.wake();
      });
      socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] }));
      stops.unshift(async () => socket.close());
      const firstHeadAfter = async (t: number): Promise<number> => {
        const deadline = performance.now() + 5_000;
        for (;;) {
          const at = headArrivals.find((h) => h >= t);
          if (at !== undefined) return at;
          if (performance.now() > deadline) throw new Error("B7: the node announced no head after a reorg");
          await heads.nap(100);
        }
      };
      const nodeDelay: number[] = [];

      const meter = cpuMeter([agent.pid, coordinator.proc.pid]);
      const detect: { i: number; ms: number }[] = [];
      const rollback: { i: number; ms: number; kind: string; depth: number }[] = [];
      const notRolledBack: number[] = [];
      ctx.log(`B7: ${reorgs} reorgs of depth 1–${MAX_DEPTH} (finality ${FINALITY} confirmations)`);
      for (let i = 0; i < cycles.length; i++) {
        const c = cycles[i]!;
        const from = chain.senders[i % chain.senders.length]!;
        const fields = chain.txFields(c, from);
        // The deposit's block: detection latency, as B5 measures it.
        await anvil.rpc("eth_sendTransaction", [fields]);
        await anvil.rpc("evm_mine");
        const minedAt = performance.now();
        const seenAt = await until(async () => (await statusOf(c.tradeId)) === "DEPOSIT_DETECTED", minedAt, 15_000);
        if (seenAt === null) throw new Error(`B7: deposit of cycle ${i} never detected`);
        detect.push({ i, ms: seenAt - minedAt });
        // Bury it to `depth`, and wait until the agent has reported the tip.
        for (let k = 1; k < c.depth; k++) await anvil.rpc("evm_mine");
        const tip = await tipHeight();
        await caughtUp(tip);
        const ancestor = tip - BigInt(c.depth);
        const oldFirst = await blockHash(ancestor + 1n);
        // The new chain lands the re-sent payment in one of its blocks (index from the ancestor).
        // Its first block also carries a filler transaction: without it, a replacement that puts
        // the payment back in the first block within the same second rebuilt the very same
        // blocks (same hashes), a reorg of nothing that was counted as a rollback of ~0 ms (22
        // of the 200 cycles).
        const at = i % c.depth;
        const txs: [Record<string, string>, number][] = [[filler(), 0]];
        if (c.kind === "replace") txs.push([fields, at]);
        const calledAt = performance.now();
        headArrivals.length = 0;
        await anvil.rpc("anvil_reorg", [c.depth, txs]);
        const returnedAt = performance.now();
        const reorgAt = Math.max(returnedAt, await firstHeadAfter(calledAt));
        nodeDelay.push(reorgAt - returnedAt);
        let check: () => Promise<boolean>;
        if (c.kind === "drop") {
          check = async () => {
            const [r] = await sql<{ status: string; d: string | null }[]>`
              SELECT t.status, (SELECT string_agg(DISTINCT d.status, ',') FROM deposits d WHERE d.trade_id = t.id) AS d
                FROM instant_trades t WHERE t.id = ${c.tradeId}`;
            return r!.status === "PENDING" && r!.d === "REORGED";
          };
        } else {
          const hash = await blockHash(ancestor + 1n + BigInt(at));
          check = async () => {
            const [r] = await sql<{ status: string; n: number }[]>`
              SELECT t.status, (SELECT count(*)::int FROM deposits d WHERE d.trade_id = t.id AND d.status = 'SEEN' AND d.block_hash = ${hash}) AS n
                FROM instant_trades t WHERE t.id = ${c.tradeId}`;
            return r!.status === "DEPOSIT_DETECTED" && r!.n === 1;
          };
        }
        const doneAt = await until(check, returnedAt, 15_000);
        if (doneAt === null) notRolledBack.push(i);
        else rollback.push({ i, ms: doneAt - reorgAt, kind: c.kind, depth: c.depth });
        if ((await blockHash(ancestor + 1n)) === oldFirst) throw new Error(`B7: reorg ${i} left block ${ancestor + 1n} as it was`);
        await caughtUp(await tipHeight());
      }

      // Past finality: the replaced deposits become final and are paid; the dropped never.
      for (let k = 0; k < FINALITY; k++) await anvil.rpc("evm_mine");
      const replaced = cycles.filter((c) => c.kind === "replace").map((c) => c.tradeId);
      const dropped = cycles.filter((c) => c.kind === "drop").map((c) => c.tradeId);
      const deadline = performance.now() + (ctx.smoke ? 30_000 : 90_000);
      while (performance.now() < deadline) {
        const s = await provider.admin.transfers();
        if (s.totals.count >= replaced.length) break;
        await sleep(250);
      }
      await sleep(1000); // anything still on its way to the provider
      const cpu = meter.stop();
      const summary = await provider.admin.transfers();
      const byTag = transfersByTag(summary.transfers);
      const orphanPayouts = dropped.filter((t) => byTag.has(t.toLowerCase())).length;
      const duplicates = [...byTag.values()].filter((ts) => ts.length > 1).length;
      const states = new Map(
        (await sql<{ id: string; status: string }[]>`SELECT id, status FROM instant_trades WHERE id = ANY(${ids})`).map((r) => [r.id, r.status]),
      );
      const paidStates = new Set(["PAYOUT_PENDING", "COMPLETED"]);
      const wrong = [
        ...dropped.filter((t) => states.get(t) !== "PENDING").map((t) => ({ t, want: "PENDING", got: states.get(t) })),
        ...replaced
          .filter((t) => !paidStates.has(states.get(t) ?? "") || (byTag.get(t.toLowerCase())?.length ?? 0) !== 1)
          .map((t) => ({ t, want: "paid once", got: `${states.get(t)}, ${byTag.get(t.toLowerCase())?.length ?? 0} transfers` })),
      ];
      const wrongStates = wrong.length + notRolledBack.length;
      if (wrongStates > 0) ctx.log(`B7: wrong states: ${JSON.stringify({ not_rolled_back: notRolledBack, wrong: wrong.slice(0, 10) })}`);
      if (orphanPayouts > 0 || duplicates > 0) {
        throw new Error(`B7: PAYOUTS ON ORPHANED DEPOSITS: ${orphanPayouts}; trades paid more than once: ${duplicates}`);
      }
      if (rollback.length === 0) throw new Error("B7: no rollback completed");

      const thirds = (xs: { i: number; ms: number }[], p: number) =>
        [0, 1, 2]
          .map((k) => percentile(xs.filter((x) => Math.floor((x.i * 3) / reorgs) === k).map((x) => x.ms).sort((a, b) => a - b), p))
          .filter(Number.isFinite);
      const pooled = (xs: { ms: number }[], p: number) => percentile(xs.map((x) => x.ms).sort((a, b) => a - b), p);
      const round1 = (x: number) => Math.round(x * 10) / 10;
      const cpuRow = { ours: cpu === null ? null : cpu / reorgs, baseline: null, unit: "reorg cycle (agent + coordinator)" };
      const byKind = (k: string, p: number) => Math.round(pooled(rollback.filter((r) => r.kind === k), p));
      const extra = {
        reorgs, max_depth: MAX_DEPTH, finality_confirmations: FINALITY,
        rollback_p50_by_kind: { drop: byKind("drop", 50), replace: byKind("replace", 50) },
        rollback_p99_by_kind: { drop: byKind("drop", 99), replace: byKind("replace", 99) },
        node_announce_after_return_ms: Object.fromEntries([50, 75, 90, 99].map((p) => [`p${p}`, round1(pooled(nodeDelay.map((ms) => ({ ms })), p))])),
      };
      const rows: Row[] = [];
      for (const [p, target] of [
        [99, 1.5],
        [50, null],
      ] as const) {
        const r = compare({
          bench: "B7", name: `B7 rollback p${p} (vs detection p${p})`, unit: "ms", mode,
          ours: thirds(rollback, p), baseline: thirds(detect, p),
          target: target === null ? null : le(target, `≤ ${target}×`), cpu: cpuRow,
          note: "baseline: the same agent's detection latency (B5's figure) on this run's deposit blocks; spread over thirds of the run",
          extra,
        });
        r.ours!.value = pooled(rollback, p);
        r.baseline!.value = pooled(detect, p);
        r.ratio = r.ours!.value / r.baseline!.value;
        r.met = target === null ? null : r.ratio <= target;
        rows.push(r);
      }
      rows.push(
        compare({
          bench: "B7", name: "B7 wrong states", unit: "trades", mode, ours: [wrongStates], baseline: [0],
          target: absMax(0, "= 0"), cpu: null, note: "trades not rolled back within 15 s, or not PENDING (dropped) / paid once (replaced) at the end",
          extra: { not_rolled_back: notRolledBack.length, wrong_at_end: wrong.length },
        }),
      );
      rows.push(
        compare({
          bench: "B7", name: "B7 payouts on orphaned deposits", unit: "transfers", mode, ours: [orphanPayouts], baseline: [0],
          target: absMax(0, "= 0"), cpu: null, note: "transfers at the provider for trades whose only deposit was dropped by a reorg",
          extra: { transfers: summary.totals.count, replaced: replaced.length, dropped: dropped.length },
        }),
      );
      return rows;
    });
  },
};
