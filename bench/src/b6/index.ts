import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuMeter } from "../core/cpu.js";
import { startChild } from "../core/proc.js";
import { absMax, compare, le, percentile, type Benchmark, type Row } from "../core/result.js";
import { startEvmAgent, waitFollowing } from "../infra/agent.js";
import { depositChain, randomAddress, type PlannedDeposit } from "../infra/deposits.js";
import { insertTrades, stockPool } from "../infra/fixtures.js";
import { script } from "../infra/paths.js";
import { cpfOf, PROJECT_ID, seedSellers, startPixProvider, transfersByTag } from "../infra/payouts.js";
import { startCoordinator, startGateway, type RunningCoordinator } from "../infra/ponte.js";
import { withAnvilRig } from "../infra/rig.js";

const pooledOf = (xs: { ms: number }[], p: number) => percentile(xs.map((x) => x.ms).sort((a, b) => a - b), p);

/** The anvil assets' confirmations (coordinator/assets/local.json) and the agent's finality rule. */
const CONFIRMATIONS = 2;

/**
 * B6 confirmation → PIX: trades paid on anvil by blocks mined at a fixed pace, followed by the
 * real EVM agent, coordinator (payout worker, Stark Bank adapter) and gateway (webhooks), paying
 * through the Stark Bank stand-in; the coordinator is SIGKILLed halfway and started again. The
 * figure runs from the moment evm_mine returned the block that makes a deposit final to the
 * moment the provider received the transfer (the stand-in's `created`, same machine clock). The
 * baseline at the same time on the same blocks: B5's minimal watcher plus one signed POST to its
 * own stand-in. Duplicates are counted at the provider: any makes the benchmark fail.
 */
export const b6: Benchmark = {
  id: "B6",
  title: "confirmation → PIX",
  async run(ctx) {
    const trades = ctx.smoke ? 8 : 500;
    const intervalMs = ctx.smoke ? 250 : 1000;
    const mode = ctx.smoke ? "smoke" : "full";
    return withAnvilRig(ctx, "b6", 2, async ({ logDir, workDir, anvil, db, sql, stops }) => {
      const chain = await depositChain(anvil);
      // 1–3 deposits per block, native and token alternating, one trade each.
      const plan: (PlannedDeposit & { block: number })[] = [];
      for (let b = 0; plan.length < trades; b++) {
        const n = Math.min(trades - plan.length, 1 + ((b * 7 + 3) % 3));
        for (let i = 0; i < n; i++) plan.push({ block: b, address: randomAddress(), native: plan.length % 2 === 0 });
      }
      const depositBlocks = plan[plan.length - 1]!.block + 1;
      // The last deposits need CONFIRMATIONS - 1 more blocks to be final.
      const blocks = depositBlocks + CONFIRMATIONS - 1;
      const tradeIds = await insertTrades(sql, { network: "anvil", tag: "b6b6", trades: plan.map((p) => chain.tradeSpec(p)) });
      const blockOfTrade = new Map(plan.map((p, i) => [tradeIds[i]!.toLowerCase(), p.block]));
      await stockPool(sql, { network: "anvil", count: 250, firstIndex: trades + 1, tag: "b6" });
      await sql`CREATE TABLE bench_b6_watch (address text PRIMARY KEY, detected_at timestamptz)`;
      await sql`INSERT INTO bench_b6_watch (address) SELECT unnest(${plan.map((p) => p.address)}::text[])`;
      await sql`ANALYZE`;

      const ours = await startPixProvider({ name: "b6-standin-ours", logDir });
      stops.push(() => ours.stop());
      const base = await startPixProvider({ name: "b6-standin-base", logDir });
      stops.push(() => base.stop());
      await seedSellers(sql, ours);

      const overrides = JSON.stringify({ "anvil:USDT": chain.tokenAddr });
      let coordinator: RunningCoordinator = await startCoordinator({
        dbUrl: db.url,
        natsUrl: ctx.natsUrl,
        logDir,
        env: { ASSET_CONTRACT_OVERRIDES: overrides, ...ours.coordinatorEnv },
      });
      stops.push(() => coordinator.stop());
      const gateway = await startGateway({ grpcTarget: coordinator.grpcTarget, logDir });
      stops.unshift(() => gateway.stop());
      await ours.admin.setWebhookUrl(`${gateway.url}/api/v1/webhooks/pix/starkbank`);
      const agent = await startEvmAgent({ name: "b6-agent", anvil, grpcTarget: coordinator.grpcTarget, workDir, logDir, overrides });
      stops.unshift(() => agent.kill("SIGTERM"));
      const watcher = await startChild({
        name: "b6-watcher",
        args: [script("b6/watcher.js")],
        logDir,
        ready: "Watcher ready",
        env: {
          B6_WS: anvil.ws, B6_HTTP: anvil.http, B6_DB: db.url, B6_TOKEN: chain.tokenAddr, B6_PROVIDER: base.url,
          B6_ACCESS_ID: `project/${PROJECT_ID}`, B6_KEY: base.project.privateKeyPem, B6_CONFIRMATIONS: String(CONFIRMATIONS),
          B6_TAX_ID: cpfOf(42),
        },
      });
      stops.unshift(() => watcher.kill("SIGTERM"));
      await waitFollowing(sql, "anvil");

      const meterOurs = cpuMeter([agent.pid, coordinator.proc.pid, gateway.proc.pid]);
      const meterBase = cpuMeter([watcher.pid]);
      const killAt = Math.floor(depositBlocks / 2);
      let restart: Promise<void> | undefined;
      let restartMs = Number.NaN;
      /** Wall-clock time (ms, the stand-ins' clock too) at which block `round` was on the node. */
      const minedAt = new Map<number, number>();
      ctx.log(`B6: ${trades} trades over ${blocks} blocks, one every ${intervalMs} ms; coordinator SIGKILL after block ${killAt}`);
      const start = performance.now();
      for (let b = 0; b < blocks; b++) {
        const due = start + (b + 1) * intervalMs;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const deposits = plan.filter((p) => p.block === b);
        if (deposits.length > 0) await chain.sendBatch(deposits, b);
        await anvil.rpc("evm_mine");
        minedAt.set(b, Date.now());
        if (b === killAt) {
          // kill -9 mid-run, then start it again at once (same port, stream and database);
          // the chain keeps moving meanwhile.
          meterOurs.sample();
          const t0 = performance.now();
          const old = coordinator;
          restart = old.restart("SIGKILL").then((c) => {
            coordinator = c;
            meterOurs.add(c.proc.pid);
            restartMs = performance.now() - t0;
            ctx.log(`B6: coordinator killed and back in ${restartMs.toFixed(0)} ms`);
          });
        }
      }
      await restart;

      // Every trade paid (ours COMPLETED; the baseline's transfers all made), or a deadline.
      const deadline = performance.now() + (ctx.smoke ? 30_000 : 90_000);
      let done = { ours: 0, base: 0 };
      while (performance.now() < deadline) {
        const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM instant_trades WHERE id = ANY(${tradeIds}) AND status = 'COMPLETED'`;
        const b = await base.admin.transfers();
        done = { ours: r!.n, base: b.totals.count };
        if (done.ours === trades && done.base >= trades) break;
        await sleep(250);
      }
      const cpuOurs = meterOurs.stop();
      const cpuBase = meterBase.stop();

      // Counted at the providers.
      const oursSummary = await ours.admin.transfers();
      const baseSummary = await base.admin.transfers();
      const byTag = transfersByTag(oursSummary.transfers);
      const duplicates = [...byTag.entries()].filter(([, ts]) => ts.length > 1);
      const dupKeys = Object.entries(oursSummary.byExternalId).filter(([, v]) => v.transfers > 1);
      const baseDup = [...transfersByTag(baseSummary.transfers).values()].filter((ts) => ts.length > 1).length;
      if (duplicates.length > 0 || dupKeys.length > 0) {
        throw new Error(
          `B6: DUPLICATE PAYOUTS at the provider: ${duplicates.length} trades paid more than once ` +
            `(${duplicates.slice(0, 5).map(([t, ts]) => `${t} ×${ts.length}`).join(", ")}), ${dupKeys.length} idempotency keys with several transfers`,
        );
      }
      const finalAt = (block: number) => minedAt.get(block + CONFIRMATIONS - 1)!;
      const lo = [...byTag.entries()].flatMap(([tag, ts]) => {
        const block = blockOfTrade.get(tag);
        return block === undefined ? [] : [{ block, ms: Date.parse(ts[0]!.created) - finalAt(block) }];
      });
      const blockOfAddress = new Map(plan.map((p) => [p.address, p.block]));
      const lb = baseSummary.transfers.flatMap((t) => {
        const block = blockOfAddress.get(t.tags[0] ?? "");
        return block === undefined ? [] : [{ block, ms: Date.parse(t.created) - finalAt(block) }];
      });
      // Settlement: when Ponte recorded the payout settled (its webhook or status check) against
      // when the baseline's provider settled its transfer.
      const settled = await sql<{ trade_id: string; at: number }[]>`
        SELECT trade_id, (EXTRACT(EPOCH FROM settled_at) * 1000)::float8 AS at FROM payouts WHERE trade_id = ANY(${tradeIds}) AND status = 'SETTLED'`;
      const so = settled.map((s) => ({ block: blockOfTrade.get(s.trade_id.toLowerCase())!, ms: s.at - finalAt(blockOfTrade.get(s.trade_id.toLowerCase())!) }));
      const sb = baseSummary.transfers.flatMap((t) => {
        const block = blockOfAddress.get(t.tags[0] ?? "");
        return block === undefined || t.status !== "success" ? [] : [{ block, ms: Date.parse(t.updated) - finalAt(block) }];
      });
      if (lo.length === 0 || lb.length === 0) throw new Error(`B6: no payouts (ours ${lo.length}, baseline ${lb.length})`);
      // Where ours' time goes, per trade (the database's times are each transaction's start):
      // final block mined → the report that confirms it → the payout prepared (DICT lookup,
      // payout row) → the submission → the provider's receipt.
      const createdAt = new Map([...byTag.entries()].map(([tag, ts]) => [tag, Date.parse(ts[0]!.created)]));
      const marks = await sql<{ id: string; confirmed: number; prepared: number; submitted: number }[]>`
        SELECT t.id, (EXTRACT(EPOCH FROM hc.created_at) * 1000)::float8 AS confirmed,
               (EXTRACT(EPOCH FROM hp.created_at) * 1000)::float8 AS prepared, (EXTRACT(EPOCH FROM p.submitted_at) * 1000)::float8 AS submitted
          FROM instant_trades t
          JOIN instant_trade_history hc ON hc.trade_id = t.id AND hc.to_status = 'PAYMENT_CONFIRMED'
          JOIN instant_trade_history hp ON hp.trade_id = t.id AND hp.to_status = 'PAYOUT_PENDING'
          JOIN payouts p ON p.trade_id = t.id
         WHERE t.id = ANY(${tradeIds})`;
      const stage = (f: (m: (typeof marks)[number], block: number) => number) =>
        Math.round(pooledOf(marks.flatMap((m) => {
          const block = blockOfTrade.get(m.id.toLowerCase());
          const v = block === undefined ? Number.NaN : f(m, block);
          return Number.isFinite(v) ? [{ ms: v }] : [];
        }), 50));
      const stagesP50 = {
        final_block_to_confirm_tx: stage((m, b) => m.confirmed - finalAt(b)),
        confirm_tx_to_prepare_tx: stage((m) => m.prepared - m.confirmed),
        prepare_tx_to_submit_tx: stage((m) => m.submitted - m.prepared),
        submit_tx_to_provider: stage((m) => (createdAt.get(m.id.toLowerCase()) ?? Number.NaN) - m.submitted),
      };
      ctx.log(`B6: ours' stages, p50 ms: ${JSON.stringify(stagesP50)}`);
      const missed = { ours: trades - lo.length, baseline: trades - lb.length, ours_not_completed: trades - done.ours };
      if (missed.ours || missed.baseline) ctx.log(`B6: unpaid trades: ours ${missed.ours}, baseline ${missed.baseline}`);

      const thirds = (xs: { block: number; ms: number }[], p: number) =>
        [0, 1, 2]
          .map((k) => percentile(xs.filter((x) => Math.floor((x.block * 3) / depositBlocks) === k).map((x) => x.ms).sort((a, b) => a - b), p))
          .filter(Number.isFinite);
      const pooled = pooledOf;
      const cpu = {
        ours: cpuOurs === null ? null : cpuOurs / trades,
        baseline: cpuBase === null ? null : cpuBase / trades,
        unit: "trade (agent + coordinator + gateway vs watcher)",
      };
      const extra = { stages_p50_ms: stagesP50, trades, blocks, interval_ms: intervalMs, confirmations: CONFIRMATIONS, kill_after_block: killAt, restart_ms: Math.round(restartMs), missed };
      const rows: Row[] = [];
      const row = (name: string, o: typeof lo, b: typeof lb, p: number, target: number | null) => {
        const r = compare({
          bench: "B6", name, unit: "ms", mode, ours: thirds(o, p), baseline: thirds(b, p),
          target: target === null ? null : le(target, `≤ ${target}×`), cpu,
          note: "both at the same time on the same blocks; spread and pair range over thirds of the run (the kill is in the second)",
          extra,
        });
        // The headline is the percentile over every trade (the thirds only give the spread).
        r.ours!.value = pooled(o, p);
        r.baseline!.value = pooled(b, p);
        r.ratio = r.ours!.value / r.baseline!.value;
        r.met = target === null ? null : r.ratio <= target;
        return r;
      };
      rows.push(row("B6 confirmation → PIX p50", lo, lb, 50, 2));
      rows.push(row("B6 confirmation → PIX p99", lo, lb, 99, null));
      rows.push(row("B6 confirmation → settled p50", so, sb, 50, null));
      rows.push(
        compare({
          bench: "B6", name: "B6 duplicate payouts", unit: "transfers", mode, ours: [duplicates.length], baseline: [baseDup],
          target: absMax(0, "= 0"), cpu: null, note: "trades with more than one transfer at the provider, after a coordinator SIGKILL mid-run",
          extra: { transfers_ours: oursSummary.totals.count, transfers_baseline: baseSummary.totals.count, create_posts_ours: Object.values(oursSummary.byExternalId).reduce((s, v) => s + v.createAttempts, 0) },
        }),
      );
      return rows;
    });
  },
};
