import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { cpuMeter } from "../core/cpu.js";
import { interleave } from "../core/interleave.js";
import { profileArgs, runJsonChild, startChild } from "../core/proc.js";
import { compare, ge, type Benchmark, type Row } from "../core/result.js";
import { insertTrades, resetChainState, seedHistory, stockPool, type TradeSpec } from "../infra/fixtures.js";
import { script } from "../infra/paths.js";
import { startCoordinator } from "../infra/ponte.js";
import { connect, freshDatabase, type Sql } from "../infra/postgres.js";
import { AGENT_MNEMONIC, DEPOSIT_SATS, fillerAddress, loadOrBuildChain, NETWORK, RPC_PASSWORD, RPC_USER, startNode } from "./chain.js";

const UTXO_AGENT_MAIN = fileURLToPath(import.meta.resolve("@ponte/agent-bitcoin")).replace(/index\.js$/, "main.js");

interface Run {
  blocksPerS: number;
  ms: number;
  cpuUsPerBlock: number | null;
  coordinatorCpuUsPerBlock?: number | null;
}

/**
 * The agent's network config: litecoin-regtest.json's settings (poll 250 ms, 6 confirmations,
 * max_in_flight 4) with the bench node, the window's first block as start height, and the
 * baseline's batching: steps of 50 blocks read in JSON-RPC batches of 50 (rpc_batch_size 50, so
 * one getblockhash batch and one getblock batch per step, as the baseline does).
 */
function writeAgentConfig(dir: string, url: string, step: number, startHeight: number): string {
  const file = join(dir, "b3-agent.json");
  writeFileSync(
    file,
    JSON.stringify({
      network: NETWORK,
      chain: "litecoin-regtest",
      rpc: { url, user: RPC_USER, password: RPC_PASSWORD },
      finality: { confirmations: 6 },
      start_height: startHeight,
      batch_size: step,
      rpc_batch_size: step,
      max_in_flight: 4,
      poll_interval_ms: 250,
      mempool_interval_ms: 250,
      reorg_window: 100,
      fees: { conf_target: 2, floor_sat_vb: 1, fallback_sat_vb: 10, max_sat_vb: 1000 },
      dust_limit_sat: 5460,
      replace_after_blocks: 3,
    }),
  );
  return file;
}

/**
 * B3 UTXO catch-up: the real UTXO agent process (agents/bitcoin/dist/main.js: poller, block
 * source, JSON-RPC client, script reader, runtime reporter) catching up a prepared litecoind
 * regtest chain from the coordinator's cursor, reporting every step to the real coordinator over
 * gRPC (ReportBlocks: blocks, deposits, transitions), with 100k watched addresses; against a bare
 * getblockhash + getblock(hash, 2) loop with the agent's decoding and the same batching. Ours is
 * timed from the agent's "Starting the follower" line (after its watch set synced) to the
 * coordinator's cursor reaching the head.
 */
export const b3: Benchmark = {
  id: "B3",
  title: "UTXO catch-up",
  async run(ctx) {
    const logDir = join(ctx.cacheDir, "logs");
    mkdirSync(ctx.cacheDir, { recursive: true });
    const workDir = mkdtempSync(join(ctx.cacheDir, "run-b3-"));
    const params = ctx.smoke ? { blocks: 10, outputsPerBlock: 20, depositsPerBlock: 2 } : { blocks: 500, outputsPerBlock: 200, depositsPerBlock: 10 };
    const watchedCount = ctx.smoke ? 1_000 : 100_000;
    const step = 50;
    const mode = ctx.smoke ? "smoke" : "full";
    const rows: Row[] = [];
    try {
      const meta = await loadOrBuildChain({ params, cacheDir: ctx.cacheDir, logDir, log: ctx.log });
      let datadir = meta.datadir;
      if (ctx.smoke) {
        datadir = join(workDir, "litecoind");
        cpSync(meta.datadir, datadir, { recursive: true });
      }
      const node = await startNode({ datadir, logDir });
      const db = await freshDatabase();
      const sql = connect(db.url, 2);
      try {
        const head = await node.rpc<number>("getblockcount");
        if (head !== meta.head) throw new Error(`litecoind has ${head} blocks, expected ${meta.head}`);
        const from = meta.first;
        const window = head - from + 1;
        const expectDeposits = meta.deposits.filter((d) => d.block >= from).length;
        // Every watched address is a trade: first the agent's deposit addresses the chain pays
        // (derivation index = position), then unpaid random P2WPKH addresses.
        if (meta.deposits.length > watchedCount) throw new Error("more deposits than watched addresses");
        const addresses: string[] = meta.deposits.map((d) => d.address);
        for (let i = addresses.length; i < watchedCount; i++) addresses.push(fillerAddress(i));
        const trades: TradeSpec[] = addresses.map((address) => ({ address, symbol: "LTC", decimals: 8, contract: "", amount: DEPOSIT_SATS }));
        ctx.log(`B3: ${trades.length} watched trades`);
        await insertTrades(sql, { network: NETWORK, tag: "b3b3", trades, firstIndex: 0 });
        await stockPool(sql, { network: NETWORK, count: 250, firstIndex: watchedCount + 1, tag: "b3" });
        // As many settled trades as the catch-up stores deposits, so the statistics describe a running desk.
        await seedHistory(sql, { network: NETWORK, count: expectDeposits, tag: "b3e0", firstIndex: watchedCount + 1_000 });
        await sql`ANALYZE`;
        const addressesFile = join(workDir, "watched.json");
        writeFileSync(addressesFile, JSON.stringify(addresses));
        // Transfer planning off (it runs once at start, then every 23 days): with it on, every
        // deposit that reaches finality during the catch-up becomes a SWEEP that the agent signs
        // and broadcasts while it is measured (5,000 of them), filling the node's mempool for the
        // next repetitions' mempool poller. Catch-up is what B3 measures; sweeps are B6's path.
        const coordinator = await startCoordinator({ dbUrl: db.url, natsUrl: ctx.natsUrl, logDir, env: { LEASE_TTL_MS: "10000", TRANSFER_INTERVAL_MS: "2000000000" } });
        const configFile = writeAgentConfig(workDir, node.url, step, from);
        try {
          const ours = (): Promise<Run> => runAgent({ sql, coordinatorTarget: coordinator.grpcTarget, coordinatorPid: coordinator.proc.pid, configFile, head, from, logDir, expectDeposits });
          const base = async (): Promise<Run> => {
            const { result } = await runJsonChild<{ ms: number; blocks: number; cpu_us: number; deposits: number }>({
              name: "b3-baseline",
              script: script("b3/baseline.js"),
              args: [node.url, RPC_USER, RPC_PASSWORD, String(from), String(head), String(step), String(step), addressesFile],
              logDir,
            });
            if (result.deposits !== expectDeposits) throw new Error(`the baseline found ${result.deposits} deposits, the chain has ${expectDeposits}`);
            return { blocksPerS: result.blocks / (result.ms / 1000), ms: result.ms, cpuUsPerBlock: result.cpu_us / result.blocks };
          };
          // Both sides warm up (litecoind's block cache, a cold coordinator and Postgres).
          const warmup = async () => {
            await base();
            await ours();
          };
          const r = await interleave<Run>({ reps: ctx.reps, label: "B3", log: ctx.log, warmup: ctx.smoke ? undefined : warmup, ours, baseline: base });
          rows.push(
            compare({
              bench: "B3",
              name: "B3 UTXO catch-up blocks/s",
              unit: "blocks/s",
              mode,
              ours: r.ours.map((x) => x.blocksPerS),
              baseline: r.baseline.map((x) => x.blocksPerS),
              target: ge(0.85),
              cpu: { ours: med(r.ours.map((x) => x.cpuUsPerBlock)), baseline: med(r.baseline.map((x) => x.cpuUsPerBlock)), unit: "block (agent process)" },
              note: "ours: the UTXO agent process through the real coordinator's ReportBlocks; baseline: raw getblockhash + getblock(hash, 2) batches with the agent's decoding",
              extra: {
                chain_blocks: head,
                caught_up_blocks: window,
                deposits_in_window: expectDeposits,
                outputs_per_block: params.outputsPerBlock,
                watched: watchedCount,
                batch_size: step,
                rpc_batch_size: step,
                ours_ms: r.ours.map((x) => Math.round(x.ms)),
                baseline_ms: r.baseline.map((x) => Math.round(x.ms)),
                coordinator_cpu_us_per_block: r.ours.map((x) => (x.coordinatorCpuUsPerBlock == null ? null : Math.round(x.coordinatorCpuUsPerBlock))),
              },
            }),
          );
        } finally {
          await coordinator.stop();
        }
      } finally {
        await node.stop();
        await sql.end();
        await db.drop();
      }
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    return rows;
  },
};

async function runAgent(o: { sql: Sql; coordinatorTarget: string; coordinatorPid: number; configFile: string; head: number; from: number; logDir: string; expectDeposits: number }): Promise<Run> {
  await resetChainState(o.sql, NETWORK);
  const agent = await startChild({
    name: "b3-agent",
    args: [...profileArgs(), UTXO_AGENT_MAIN],
    logDir: o.logDir,
    env: { UTXO_CONFIG: o.configFile, SEED_SOURCE: "env", UTXO_SEED_MNEMONIC: AGENT_MNEMONIC, SEED_MNEMONIC: AGENT_MNEMONIC, COORDINATOR_ADDR: o.coordinatorTarget, METRICS_PORT: "0", LOG_LEVEL: "info" },
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
    const [d] = await o.sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM deposits WHERE network = ${NETWORK} AND tx_ref NOT LIKE 'hist:%'`;
    if (Number(d?.n) !== o.expectDeposits) throw new Error(`the coordinator stored ${d?.n} deposits, the chain has ${o.expectDeposits}; agent log ${agent.logFile}`);
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
