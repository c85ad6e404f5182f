import { AGENT_MNEMONIC } from "@ponte/agent-evm/testing";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Interface } from "ethers";
import { cpuMeter } from "../core/cpu.js";
import { profileArgs, startChild } from "../core/proc.js";
import { compare, le, percentile, type Benchmark, type Row } from "../core/result.js";
import { insertTrades, stockPool, type TradeSpec } from "../infra/fixtures.js";
import { ANVIL_CONFIG, EVM_AGENT_MAIN, script, TEST_TOKEN } from "../infra/paths.js";
import { startCoordinator } from "../infra/ponte.js";
import { withAnvilRig } from "../infra/rig.js";

const NATIVE = 10_000_000_000_000_000n;
const TOKEN = 100_000_000n;

/**
 * B5 detection latency: blocks mined by this process at a fixed pace (evm_mine on a node that
 * otherwise does not mine), each with 1–3 deposits to trades' addresses. Latency runs from the
 * moment evm_mine returned (the block is on the node) to the commit that makes the trade
 * DEPOSIT_DETECTED, seen here by LISTEN: ours through the real EVM agent process (ws newHeads,
 * its block processing, ReportBlocks) and the real coordinator (NOTIFY ponte_outbox at commit);
 * the minimal watcher at the same time (NOTIFY from its UPDATE).
 */
export const b5: Benchmark = {
  id: "B5",
  title: "detection latency",
  async run(ctx) {
    const blocks = ctx.smoke ? 10 : 200;
    const intervalMs = ctx.smoke ? 200 : 1000;
    const mode = ctx.smoke ? "smoke" : "full";
    return withAnvilRig(ctx, "b5", 2, async ({ logDir, workDir, anvil, db, sql, stops }) => {
      // The token, and balances for the senders.
      const artifact = JSON.parse(readFileSync(TEST_TOKEN, "utf8")) as { abi: unknown[]; bytecode: string };
      const token = new Interface(artifact.abi as never);
      const senders = (await anvil.rpc<string[]>("eth_accounts")).slice(0, 5);
      const nonces = new Map(senders.map((s) => [s, 0]));
      const tx = (from: string, fields: Record<string, string>): [string, unknown[]] => {
        const n = nonces.get(from)!;
        nonces.set(from, n + 1);
        return ["eth_sendTransaction", [{ from, nonce: `0x${n.toString(16)}`, ...fields }]];
      };
      const [deployHash] = await anvil.batch<string>([tx(senders[0]!, { data: artifact.bytecode + token.encodeDeploy(["Bench USDT", "USDT", 6]).slice(2), gas: "0x2dc6c0" })]);
      await anvil.rpc("evm_mine");
      const receipt = await anvil.rpc<{ contractAddress: string }>("eth_getTransactionReceipt", [deployHash]);
      const tokenAddr = receipt.contractAddress.toLowerCase();
      await anvil.batch(senders.map((s) => tx(senders[0]!, { to: tokenAddr, data: token.encodeFunctionData("mint", [s, 10n ** 15n]), gas: "0x186a0" })));
      await anvil.rpc("evm_mine");

      // The plan: 1–3 deposits per block, native and token alternating, one trade each.
      const plan: { block: number; address: string; native: boolean }[] = [];
      for (let b = 0; b < blocks; b++) {
        const n = 1 + ((b * 7 + 3) % 3);
        for (let i = 0; i < n; i++) plan.push({ block: b, address: `0x${randomBytes(20).toString("hex")}`, native: plan.length % 2 === 0 });
      }
      const trades: TradeSpec[] = plan.map((p) =>
        p.native
          ? { address: p.address, symbol: "ETH", decimals: 18, contract: "", amount: NATIVE }
          : { address: p.address, symbol: "USDT", decimals: 6, contract: tokenAddr, amount: TOKEN },
      );
      await insertTrades(sql, { network: "anvil", tag: "b5b5", trades });
      await stockPool(sql, { network: "anvil", count: 250, firstIndex: trades.length + 1, tag: "b5" });
      await sql`CREATE TABLE bench_b5_watch (address text PRIMARY KEY, detected_at timestamptz)`;
      await sql`INSERT INTO bench_b5_watch (address) SELECT unnest(${plan.map((p) => p.address)}::text[])`;
      await sql`ANALYZE`;

      const overrides = JSON.stringify({ "anvil:USDT": tokenAddr });
      const coordinator = await startCoordinator({ dbUrl: db.url, natsUrl: ctx.natsUrl, logDir, env: { ASSET_CONTRACT_OVERRIDES: overrides } });
      stops.push(() => coordinator.stop());
      const config = JSON.parse(readFileSync(ANVIL_CONFIG, "utf8")) as Record<string, unknown>;
      config.rpc = [{ http: anvil.http, ws: anvil.ws }];
      config.start_height = "latest";
      const configFile = join(workDir, "b5-agent.json");
      writeFileSync(configFile, JSON.stringify(config));
      const agent = await startChild({
        name: "b5-agent",
        args: [...profileArgs(), EVM_AGENT_MAIN],
        logDir,
        ready: "Starting the follower",
        timeoutMs: 60_000,
        env: {
          EVM_CONFIG: configFile,
          SEED_SOURCE: "env",
          EVM_SEED_MNEMONIC: AGENT_MNEMONIC,
          SEED_MNEMONIC: AGENT_MNEMONIC,
          COORDINATOR_ADDR: coordinator.grpcTarget,
          METRICS_PORT: "0",
          LOG_LEVEL: "info",
          ASSET_CONTRACT_OVERRIDES: overrides,
        },
      });
      stops.unshift(() => agent.kill("SIGTERM"));
      const watcher = await startChild({ name: "b5-watcher", args: [script("b5/watcher.js"), anvil.ws, anvil.http, db.url, tokenAddr], logDir, ready: "Watcher ready" });
      stops.unshift(() => watcher.kill("SIGTERM"));
      // The agent has reported its first block (the head when it started): it is following.
      for (let i = 0; ; i++) {
        const [c] = await sql`SELECT 1 FROM chain_cursors WHERE network = 'anvil'`;
        if (c) break;
        if (i > 600) throw new Error("the agent never reported its first block");
        await sleep(50);
      }

      // Observer: detection times by LISTEN (NOTIFY is delivered at commit).
      const blockAt = new Map<number, number>();
      const blockOf = new Map(plan.map((p) => [p.address, p.block]));
      const ours = new Map<string, number>();
      const base = new Map<string, number>();
      const pendingOurs = new Set(plan.map((p) => p.address));
      let querying = false;
      let again: number | undefined;
      const checkOurs = async (at: number) => {
        if (querying) {
          again ??= at;
          return;
        }
        querying = true;
        try {
          let t: number | undefined = at;
          while (t !== undefined) {
            again = undefined;
            const rows = await sql<{ a: string }[]>`
              SELECT deposit_address AS a FROM instant_trades WHERE network = 'anvil' AND status <> 'PENDING' AND deposit_address = ANY(${[...pendingOurs]})`;
            for (const r of rows) {
              pendingOurs.delete(r.a);
              ours.set(r.a, t);
            }
            t = again;
          }
        } finally {
          querying = false;
        }
      };
      const l1 = await sql.listen("ponte_outbox", () => void checkOurs(performance.now()));
      const l2 = await sql.listen("bench_b5", (payload) => {
        const at = performance.now();
        for (const a of payload.split(",")) if (a && !base.has(a)) base.set(a, at);
      });
      stops.unshift(async () => {
        await l1.unlisten();
        await l2.unlisten();
      });

      const meterOurs = cpuMeter([agent.pid, coordinator.proc.pid]);
      const meterBase = cpuMeter([watcher.pid]);
      ctx.log(`B5: mining ${blocks} blocks, one every ${intervalMs} ms`);
      const start = performance.now();
      for (let b = 0; b < blocks; b++) {
        const due = start + (b + 1) * intervalMs;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const deposits = plan.filter((p) => p.block === b);
        await anvil.batch(
          deposits.map((p, i) => {
            const from = senders[(b + i) % senders.length]!;
            return p.native
              ? tx(from, { to: p.address, value: `0x${NATIVE.toString(16)}`, gas: "0x5208" })
              : tx(from, { to: tokenAddr, data: token.encodeFunctionData("transfer", [p.address, TOKEN]), gas: "0x11170" });
          }),
        );
        await anvil.rpc("evm_mine");
        blockAt.set(b, performance.now());
      }
      const deadline = performance.now() + 15_000;
      while ((pendingOurs.size > 0 || base.size < plan.length) && performance.now() < deadline) await sleep(50);
      const cpuOurs = meterOurs.stop();
      const cpuBase = meterBase.stop();

      const lat = (m: Map<string, number>) =>
        plan.flatMap((p) => (m.has(p.address) ? [{ block: p.block, ms: m.get(p.address)! - blockAt.get(blockOf.get(p.address)!)! }] : []));
      const lo = lat(ours);
      const lb = lat(base);
      const missed = { ours: plan.length - lo.length, baseline: plan.length - lb.length };
      if (lo.length === 0 || lb.length === 0) throw new Error(`B5: no detections (ours ${lo.length}, baseline ${lb.length})`);
      // Spread: the figure over each third of the blocks.
      const thirds = (xs: { block: number; ms: number }[], p: number) =>
        [0, 1, 2].map((k) => {
          const part = xs.filter((x) => Math.floor((x.block * 3) / blocks) === k).map((x) => x.ms).sort((a, b) => a - b);
          return percentile(part, p);
        }).filter(Number.isFinite);
      const pooled = (xs: { ms: number }[], p: number) => percentile(xs.map((x) => x.ms).sort((a, b) => a - b), p);
      const cpu = {
        ours: cpuOurs === null ? null : cpuOurs / blocks,
        baseline: cpuBase === null ? null : cpuBase / blocks,
        unit: "block (agent + coordinator vs watcher)",
      };
      const rows: Row[] = [];
      for (const [p, target] of [
        [50, 1.5],
        [99, 2],
      ] as const) {
        const row = compare({
          bench: "B5",
          name: `B5 detection p${p}`,
          unit: "ms",
          mode,
          ours: thirds(lo, p),
          baseline: thirds(lb, p),
          target: le(target, `≤ ${target}×`),
          cpu,
          note: "both followers at the same time on the same blocks; spread and pair range over thirds of the run",
          extra: { blocks, interval_ms: intervalMs, deposits: plan.length, missed, pooled: true },
        });
        // The headline is the percentile over every deposit (the thirds only give the spread).
        const o = pooled(lo, p);
        const bl = pooled(lb, p);
        row.ours!.value = o;
        row.baseline!.value = bl;
        row.ratio = o / bl;
        row.met = row.ratio <= target;
        rows.push(row);
      }
      if (missed.ours || missed.baseline) ctx.log(`B5: undetected deposits: ours ${missed.ours}, baseline ${missed.baseline}`);
      return rows;
    });
  },
};
