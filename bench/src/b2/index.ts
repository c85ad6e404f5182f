import { AGENT_MNEMONIC } from "@ponte/agent-evm/testing";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuMeter } from "../core/cpu.js";
import { interleave } from "../core/interleave.js";
import { profileArgs, runJsonChild, startChild } from "../core/proc.js";
import { compare, ge, type Benchmark, type Row } from "../core/result.js";
import { startAnvilNode } from "../infra/anvil.js";
import { insertTrades, resetChainState, stockPool, type TradeSpec } from "../infra/fixtures.js";
import { EVM_AGENT_MAIN, LOCAL_ASSETS, script } from "../infra/paths.js";
import { startCoordinator } from "../infra/ponte.js";
import { connect, freshDatabase, type Sql } from "../infra/postgres.js";
import { loadOrBuildChain, NATIVE_DEPOSIT, watchedAddress, type ChainMeta } from "./chain.js";

const NETWORK = "anvil";

interface Run {
  blocksPerS: number;
  ms: number;
  cpuUsPerBlock: number | null;
  coordinatorCpuUsPerBlock?: number | null;
}

/** The coordinator's registry for the bench chain: local.json plus the two extra tokens. */
function writeRegistry(dir: string, meta: ChainMeta): string {
  const reg = JSON.parse(readFileSync(LOCAL_ASSETS, "utf8")) as { assets: Record<string, unknown>[] };
  const assets = reg.assets.filter((a) => a.network === NETWORK && a.symbol === "ETH");
  for (const t of meta.tokens) {
    assets.push({ network: NETWORK, family: "evm", symbol: t.symbol, name: `Bench ${t.symbol}`, decimals: 6, contract: t.contract, min_amount: "1", max_amount: "100000", confirmations: 2, price_key: t.symbol });
  }
  const file = join(dir, "b2-assets.json");
  writeFileSync(file, JSON.stringify({ assets }));
  return file;
}

/** The agent's network config: anvil.json's settings (batch 100, 8 in flight, RPC batches of 50), the bench node and tokens. */
function writeAgentConfig(dir: string, meta: ChainMeta, http: string, ws: string, batchSize: number, startHeight: number): string {
  const file = join(dir, "b2-agent.json");
  writeFileSync(
    file,
    JSON.stringify({
      network: NETWORK,
      chain_id: 31337,
      rpc: [{ http, ws }],
      finality: { confirmations: 2 },
      tokens: meta.tokens.map((t) => ({ symbol: t.symbol, contract: t.contract, decimals: 6 })),
      start_height: startHeight,
      batch_size: batchSize,
      max_in_flight: 8,
      rpc_batch_size: 50,
      logs_max_range: 2000,
      poll_interval_ms: 500,
      rpc_timeout_ms: 15000,
    }),
  );
  return file;
}

/**
 * B2 EVM catch-up: the real EVM agent process (agents/evm/dist/main.js: follower, block
 * processor, log fetcher, JSON-RPC client, runtime reporter) catching up to the head
 * of a prepared anvil chain, reporting every batch to the real coordinator over gRPC
 * (ReportBlocks: blocks, deposits, transitions), with 100k watched addresses; against a raw
 * ethers loop reading the same blocks and logs with the same step and batch size. Ours is timed
 * from the agent's "Starting the follower" line (after its watch set synced) to the coordinator's
 * cursor reaching the head.
 */
export const b2: Benchmark = {
  id: "B2",
  title: "EVM catch-up",
  async run(ctx) {
    const logDir = join(ctx.cacheDir, "logs");
    // Config files of this run only (a smoke run inside `npm test` may run beside a full one).
    mkdirSync(ctx.cacheDir, { recursive: true });
    const workDir = mkdtempSync(join(ctx.cacheDir, "run-b2-"));
    const params = ctx.smoke ? { blocks: 20, txsPerBlock: 10, watched: 500 } : { blocks: 2_000, txsPerBlock: 50, watched: 100_000 };
    const batchSize = ctx.smoke ? 10 : 100;
    const mode = ctx.smoke ? "smoke" : "full";
    const meta = await loadOrBuildChain({ params, cacheDir: ctx.cacheDir, logDir, log: ctx.log, cache: !ctx.smoke });
    ctx.log(`B2: loading the chain into anvil (${meta.head} blocks)`);
    const anvil = await startAnvilNode({ args: ["--no-mining", "--load-state", meta.stateFile], logDir, startTimeoutMs: 300_000 });
    const db = await freshDatabase();
    const sql = connect(db.url, 2);
    const rows: Row[] = [];
    try {
      const head = Number(BigInt(await anvil.rpc<string>("eth_blockNumber")));
      if (head !== meta.head) throw new Error(`anvil has ${head} blocks after loading, expected ${meta.head}`);
      // anvil serves a full 50-transaction block in ~0.1 s here (both sides wait on it), so one
      // pass over all 2,000 blocks takes minutes per side: the full run catches up the chain's
      // last BENCH_B2_WINDOW blocks (default 500; the whole chain in smoke mode).
      const window = ctx.smoke ? head : Math.min(head, Number.parseInt(process.env.BENCH_B2_WINDOW ?? "500", 10) || 500);
      const from = head - window + 1;
      const expectDeposits = meta.deposits.filter((d) => d.block >= from).length;
      // Every watched address is a trade; those the chain pays expect exactly what they get.
      const paid = new Map(meta.deposits.map((d) => [d.index, d]));
      const trades: TradeSpec[] = [];
      for (let i = 0; i < params.watched; i++) {
        const d = paid.get(i);
        trades.push(
          d
            ? { address: watchedAddress(i), symbol: d.symbol, decimals: d.contract ? 6 : 18, contract: d.contract, amount: BigInt(d.amount) }
            : { address: watchedAddress(i), symbol: "ETH", decimals: 18, contract: "", amount: NATIVE_DEPOSIT },
        );
      }
      ctx.log(`B2: ${trades.length} watched trades`);
      await insertTrades(sql, { network: NETWORK, tag: "b2b2", trades });
      await stockPool(sql, { network: NETWORK, count: 250, firstIndex: params.watched + 1, tag: "b2" });
      await sql`ANALYZE`;
      const coordinator = await startCoordinator({
        dbUrl: db.url,
        natsUrl: ctx.natsUrl,
        logDir,
        env: { ASSETS_FILE: writeRegistry(workDir, meta), LEASE_TTL_MS: "10000" },
      });
      const configFile = writeAgentConfig(workDir, meta, anvil.http, anvil.ws, batchSize, from);
      try {
        const ours = (): Promise<Run> => runAgent({ sql, coordinatorTarget: coordinator.grpcTarget, coordinatorPid: coordinator.proc.pid, configFile, head, from, logDir, expectDeposits });
        const base = async (): Promise<Run> => {
          const { result } = await runJsonChild<{ ms: number; blocks: number; cpu_us: number; txs: number }>({
            name: "b2-baseline",
            script: script("b2/baseline.js"),
            args: [anvil.http, String(from), String(head), String(batchSize), "50", meta.tokens.map((t) => t.contract).join(",")],
            logDir,
          });
          return { blocksPerS: result.blocks / (result.ms / 1000), ms: result.ms, cpuUsPerBlock: result.cpu_us / result.blocks };
        };
        // Both sides warm up: a first ours run pays for a cold coordinator and cold Postgres
        // (16 ms of coordinator CPU per block, against 3–5 ms in the later runs) and anvil's
        // receipt path, which the baseline never touches.
        const warmup = async () => {
          await base();
          await ours();
        };
        const r = await interleave<Run>({ reps: ctx.reps, label: "B2", log: ctx.log, warmup: ctx.smoke ? undefined : warmup, ours, baseline: base });
        rows.push(
          compare({
            bench: "B2",
            name: "B2 EVM catch-up blocks/s",
            unit: "blocks/s",
            mode,
            ours: r.ours.map((x) => x.blocksPerS),
            baseline: r.baseline.map((x) => x.blocksPerS),
            target: ge(0.9),
            cpu: { ours: med(r.ours.map((x) => x.cpuUsPerBlock)), baseline: med(r.baseline.map((x) => x.cpuUsPerBlock)), unit: "block (agent process)" },
            note: "ours: the agent process through the real coordinator's ReportBlocks; baseline: raw ethers getBlockByNumber(n, true) + range getLogs",
            extra: {
              chain_blocks: head,
              caught_up_blocks: window,
              deposits_in_window: expectDeposits,
              txs_per_block: params.txsPerBlock,
              watched: params.watched,
              deposits: meta.deposits.length,
              batch_size: batchSize,
              ours_ms: r.ours.map((x) => Math.round(x.ms)),
              baseline_ms: r.baseline.map((x) => Math.round(x.ms)),
              coordinator_cpu_us_per_block: r.ours.map((x) => x.coordinatorCpuUsPerBlock),
            },
          }),
        );
      } finally {
        await coordinator.stop();
      }
    } finally {
      await anvil.stop();
      rmSync(workDir, { recursive: true, force: true });
      await sql.end();
      await db.drop();
    }
    return rows;
  },
};

async function runAgent(o: { sql: Sql; coordinatorTarget: string; coordinatorPid: number; configFile: string; head: number; from: number; logDir: string; expectDeposits: number }): Promise<Run> {
  await resetChainState(o.sql, NETWORK);
  const agent = await startChild({
    name: "b2-agent",
    args: [...profileArgs(), EVM_AGENT_MAIN],
    logDir: o.logDir,
    env: { EVM_CONFIG: o.configFile, SEED_SOURCE: "env", EVM_SEED_MNEMONIC: AGENT_MNEMONIC, SEED_MNEMONIC: AGENT_MNEMONIC, COORDINATOR_ADDR: o.coordinatorTarget, METRICS_PORT: "0", LOG_LEVEL: "info" },
  });
  try {
    const line = await agent.waitFor("Starting the follower", { timeoutMs: 300_000 });
    const meter = cpuMeter([agent.pid]);
    const coordMeter = cpuMeter([o.coordinatorPid]);
    const t0 = Date.parse((JSON.parse(line) as { time: string }).time);
    const deadline = Date.now() + 900_000;
    for (;;) {
      const [c] = await o.sql<{ height: bigint }[]>`SELECT height FROM chain_cursors WHERE network = ${NETWORK}`;
      if (c && Number(c.height) >= o.head) break;
      if (agent.exitCode !== null) throw new Error(`the agent exited (${agent.exitCode}); log ${agent.logFile}`);
      if (Date.now() > deadline) throw new Error(`catch-up did not finish; cursor at ${c?.height}`);
      await sleep(10);
    }
    const t1 = Date.now();
    const cpu = meter.stop();
    const coordCpu = coordMeter.stop();
    const [d] = await o.sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM deposits WHERE network = ${NETWORK}`;
    if (Number(d?.n) !== o.expectDeposits) throw new Error(`the coordinator stored ${d?.n} deposits, the chain has ${o.expectDeposits}`);
    const blocks = o.head - o.from + 1;
    return { blocksPerS: blocks / ((t1 - t0) / 1000), ms: t1 - t0, cpuUsPerBlock: cpu === null ? null : cpu / blocks, coordinatorCpuUsPerBlock: coordCpu === null ? null : coordCpu / blocks };
  } finally {
    await agent.kill("SIGTERM");
  }
}

const med = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return v.length ? v[v.length >> 1]! : null;
};
