#!/usr/bin/env node
// npm run bench [-- B1 B4 …] [-- --smoke]   (env: BENCH_REPS, BENCH_CPU_PROF, BENCH_CACHE_DIR)
// Runs each benchmark (ours and its bare baseline interleaved in the same run), prints one JSON
// line per figure and a Markdown table row, and at the end the whole table.
import { provisionNats, provisionPostgres } from "@ponte/common/testing";
import { mkdirSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { b1 } from "./b1/index.js";
import { b2 } from "./b2/index.js";
import { b3 } from "./b3/index.js";
import { b4 } from "./b4/index.js";
import { b5 } from "./b5/index.js";
import { b6 } from "./b6/index.js";
import { b7 } from "./b7/index.js";
import { b8 } from "./b8/index.js";
import type { Benchmark, Row } from "./core/result.js";
import { TABLE_HEADER, tableRow } from "./core/table.js";

export const BENCHMARKS: Benchmark[] = [b1, b2, b3, b4, b5, b6, b7, b8];

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const wanted = args.filter((a) => !a.startsWith("--")).map((a) => a.toUpperCase());
const unknown = wanted.filter((w) => !BENCHMARKS.some((b) => b.id === w));
if (unknown.length) {
  process.stderr.write(`unknown benchmark ${unknown.join(", ")}; known: ${BENCHMARKS.map((b) => b.id).join(" ")}\n`);
  process.exit(2);
}
const selected = wanted.length ? BENCHMARKS.filter((b) => wanted.includes(b.id)) : BENCHMARKS;

const cacheDir = process.env.BENCH_CACHE_DIR ?? fileURLToPath(new URL("../.cache/", import.meta.url));
mkdirSync(cacheDir, { recursive: true });
const started = Date.now();
const log = (msg: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);

const pg = await provisionPostgres();
const nats = await provisionNats();
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
log(`${smoke ? "smoke" : "full"} run of ${selected.map((b) => b.id).join(" ")} on ${machine}`);

// A B A B A B (3 pairs) unless BENCH_REPS says otherwise (profiling runs); one pair in smoke mode.
const reps = smoke ? 1 : Number.parseInt(process.env.BENCH_REPS ?? "3", 10) || 3;
const rows: Row[] = [];
let failed = 0;
for (const b of selected) {
  const t0 = Date.now();
  log(`${b.id} ${b.title}: start`);
  try {
    const load0 = loadavg()[0]!;
    const out = await b.run({ smoke, reps, pgUrl: pg.url, natsUrl: nats.url, cacheDir, log });
    // The machine is shared: the 1-minute load average before and after tells how noisy it was.
    const load = [Number(load0.toFixed(1)), Number(loadavg()[0]!.toFixed(1))];
    for (const r of out) {
      r.extra = { ...r.extra, loadavg_1m: load };
      rows.push(r);
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.stdout.write(`${tableRow(r)}\n`);
    }
    log(`${b.id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    failed++;
    const msg = (err as Error)?.stack ?? String(err);
    log(`${b.id} FAILED: ${msg}`);
    const row = { bench: b.id, name: `${b.id} ${b.title}`, error: (err as Error)?.message ?? String(err) };
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }
}

const date = new Date().toISOString().slice(0, 10);
process.stdout.write(`\n${smoke ? "Smoke run (tiny sizes: not figures)" : "Results"}, ${date}, ${machine}; ${((Date.now() - started) / 1000).toFixed(0)} s\n\n`);
process.stdout.write(`${[...TABLE_HEADER, ...rows.map(tableRow)].join("\n")}\n`);
await nats.stop();
await pg.stop();
process.exit(failed ? 1 : 0);
