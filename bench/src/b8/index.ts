import { join } from "node:path";
import { interleave } from "../core/interleave.js";
import { profileArgs, runJsonChild } from "../core/proc.js";
import { cpuMeter } from "../core/cpu.js";
import { absMax, compare, le, median, type Benchmark, type Row } from "../core/result.js";
import { generateTrades } from "../infra/fixtures.js";
import { migrationsFingerprint } from "@ponte/coordinator";
import { createHash } from "node:crypto";
import { script } from "../infra/paths.js";
import { startCoordinator } from "../infra/ponte.js";
import { cachedDatabase, connect, freshDatabase } from "../infra/postgres.js";

interface Loaded {
  size: number;
  load_ms: number;
  /** CPU over the load: the child's own (process.cpuUsage); for ours, plus the coordinator's. */
  cpu_us: number;
  /** What the watch set holds: V8 heap plus ArrayBuffer backing stores, after gc(). */
  heap_bytes: number;
  heap_used: number;
  rss: number;
}

/** Bump when the fixture changes: the cached database is keyed by it. */
const FIXTURE_VERSION = 2; // 2: mixed-case addresses, as EVM agents store them

async function fill(url: string, sizes: number[]): Promise<void> {
  const sql = connect(url, 1);
  try {
    for (const [i, n] of sizes.entries()) await generateTrades(sql, { network: `bench-b8-${n}`, count: n, tag: `b80${i}` });
    await sql`ANALYZE`;
  } finally {
    await sql.end();
  }
}

/**
 * B8 memory per watched address: the agent runtime's watch set loaded from the real
 * coordinator's WatchAddresses stream (a child process per run, heap measured after gc) against a
 * bare Node process holding a Set<string> after one raw SELECT. 0, 100k and 1M watched addresses
 * (smoke: 0, 1k, 5k); the 1.1M trades live in a database kept between runs.
 */
export const b8: Benchmark = {
  id: "B8",
  title: "memory per watched address",
  async run(ctx) {
    const logDir = join(ctx.cacheDir, "logs");
    const sizes = ctx.smoke ? [0, 1_000, 5_000] : [0, 100_000, 1_000_000];
    const mode = ctx.smoke ? "smoke" : "full";
    let dbUrl: string;
    let drop: (() => Promise<void>) | undefined;
    if (ctx.smoke) {
      const db = await freshDatabase();
      await fill(db.url, sizes);
      dbUrl = db.url;
      drop = db.drop;
    } else {
      const key = createHash("sha256").update(`${migrationsFingerprint()}|b8|${FIXTURE_VERSION}|${sizes.join(",")}`).digest("hex").slice(0, 12);
      dbUrl = await cachedDatabase({ adminUrl: ctx.pgUrl, key: `b8_${key}`, build: (url) => fill(url, sizes), log: ctx.log });
    }
    const coordinator = await startCoordinator({ dbUrl, natsUrl: ctx.natsUrl, logDir, env: { LEASE_TTL_MS: "600000" } });
    const rows: Row[] = [];
    try {
      for (const n of sizes) {
        const network = `bench-b8-${n}`;
        const ours = () =>
          (async () => {
            // The coordinator works only while a child streams: its CPU over the child's run is the stream's.
            const coordCpu = cpuMeter([coordinator.proc.pid]);
            const { result } = await runJsonChild<Loaded>({ name: "b8-ours", script: script("b8/ours.js"), nodeArgs: ["--expose-gc", ...profileArgs()], args: [coordinator.grpcTarget, network], logDir });
            return { ...result, cpu_us: result.cpu_us + (coordCpu.stop() ?? Number.NaN) };
          })();
        const base = () =>
          runJsonChild<Loaded>({ name: "b8-baseline", script: script("b8/baseline.js"), nodeArgs: ["--expose-gc"], args: [dbUrl, network], logDir }).then((r) => r.result);
        const r = await interleave<Loaded>({
          reps: ctx.reps,
          label: `B8 ${n}`,
          log: ctx.log,
          warmup: ctx.smoke ? undefined : async () => {
            if (n === sizes[1]) {
              await ours();
              await base();
            }
          },
          ours,
          baseline: base,
        });
        for (const x of [...r.ours, ...r.baseline]) {
          if (x.size !== n) throw new Error(`B8: loaded ${x.size} addresses, expected ${n}`);
        }
        const label = n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : String(n);
        const mb = (b: number) => b / 2 ** 20;
        if (n === 0) {
          rows.push(
            compare({
              bench: "B8",
              name: "B8 0 watched: process heap",
              unit: "MB",
              mode,
              ours: r.ours.map((x) => mb(x.heap_used)),
              baseline: r.baseline.map((x) => mb(x.heap_used)),
              note: "whole heap after start-up (runtime + gRPC client vs postgres client); context, no target",
            }),
          );
          continue;
        }
        const per100k = (x: Loaded) => mb(x.heap_bytes) * (100_000 / n);
        rows.push(
          compare({
            bench: "B8",
            name: `B8 ${label} watched: heap`,
            unit: "MB",
            mode,
            ours: r.ours.map((x) => mb(x.heap_bytes)),
            baseline: r.baseline.map((x) => mb(x.heap_bytes)),
            target: le(2, "≤ 2×"),
            cpu: null,
            extra: { mb_per_100k: { ours: r.ours.map(per100k), baseline: r.baseline.map(per100k), target: 25 } },
          }),
          compare({
            bench: "B8",
            name: `B8 ${label} watched: MB per 100k`,
            unit: "MB",
            mode,
            ours: r.ours.map(per100k),
            baseline: r.baseline.map(per100k),
            target: absMax(25, "≤ 25 MB (ours)"),
          }),
          compare({
            bench: "B8",
            name: `B8 ${label} watched: load time`,
            unit: "ms",
            mode,
            ours: r.ours.map((x) => x.load_ms),
            baseline: r.baseline.map((x) => x.load_ms),
            target: le(1.5, "≤ 1.5×"),
            cpu: { ours: median(r.ours.map((x) => x.cpu_us / n)), baseline: median(r.baseline.map((x) => x.cpu_us / n)), unit: "address (agent + coordinator vs bare process; Postgres on neither)" },
          }),
        );
      }
    } finally {
      await coordinator.stop();
      if (drop) await drop();
    }
    return rows;
  },
};
