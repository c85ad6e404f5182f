// B8's baseline (run with --expose-gc): a bare Node process that SELECTs the same watched
// addresses with `postgres` and holds them in a Set<string>.
import postgres from "postgres";
import { emitResult } from "../core/proc.js";

const [dbUrl, network] = process.argv.slice(2) as [string, string];
const gc = (globalThis as { gc?: () => void }).gc!;
// The V8 heap plus ArrayBuffer backing stores, which live outside it (typed arrays' contents).
const held = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
await sql`SELECT 1`;
gc();
gc();
const heap0 = held();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const rows = await sql<{ address: string }[]>`
  SELECT d.address FROM deposit_addresses d JOIN instant_trades t ON t.id = d.trade_id
   WHERE d.network = ${network} AND d.status = 'ASSIGNED' AND t.monitoring_until > now()`;
let set: Set<string> | undefined = new Set<string>();
for (const r of rows) set.add(r.address);
rows.length = 0;
const loadMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
gc();
gc();
const mem = process.memoryUsage();
const size = set.size;
// What the set itself retains: the heap with it less the heap once it is dropped (what the
// query path allocated lazily on first use stays on both sides of the difference).
set = undefined;
gc();
gc();
const heapWithout = held();
emitResult({ size, load_ms: loadMs, cpu_us: cpu.user + cpu.system, heap_bytes: mem.heapUsed + mem.arrayBuffers - Math.min(heap0, heapWithout), heap_used: mem.heapUsed, rss: mem.rss });
await sql.end();
process.exit(0);
