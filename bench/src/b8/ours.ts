// B8, our side (run with --expose-gc): the agent runtime's watch set, filled from the real
// coordinator's WatchAddresses stream, exactly as an agent does at start. Prints the heap the set
// holds and how long the snapshot took.
import { createAgentMetrics, createCoordinatorClient, createWatchSet } from "@ponte/agent-runtime";
import { createLogger, createRegistry } from "@ponte/common";
import { emitResult } from "../core/proc.js";

const [target, network] = process.argv.slice(2) as [string, string];
const gc = (globalThis as { gc?: () => void }).gc!;
// The V8 heap plus ArrayBuffer backing stores, which live outside it (typed arrays' contents).
const held = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const logger = createLogger({ name: "bench-b8", level: "warn" });
const client = createCoordinatorClient({ address: target, logger, deadlineMs: 60_000 });
const metrics = createAgentMetrics(createRegistry("bench-b8"), network);
const identity0 = { network, agentId: `bench-b8-${process.pid}`, leaseEpoch: 0n };
const grant = await client.register(identity0, { family: "evm", chainId: "31337", version: "bench" });
if (!grant.granted) throw new Error(`lease for ${network} is held by ${grant.holder}`);
const identity = { ...identity0, leaseEpoch: grant.epoch };

let watch: ReturnType<typeof createWatchSet> | undefined = createWatchSet({ logger }, { client, metrics, normalize: (a) => a.toLowerCase(), network });
gc();
gc();
const heap0 = held();
const ac = new AbortController();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const running = watch.run(identity, ac.signal, (reason) => {
  throw new Error(reason);
});
await watch.waitSynced(ac.signal);
const loadMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
gc();
gc();
const mem = process.memoryUsage();
const size = watch.size;
// Keep the set alive past the measurement.
if (watch.get("0x0") !== undefined) process.stdout.write("?\n");
ac.abort();
await running;
// What the set itself retains: the heap with it less the heap once it is dropped (buffers the
// gRPC client allocated on first use stay on both sides of the difference).
watch = undefined;
gc();
gc();
const heapWithout = held();
emitResult({ size, load_ms: loadMs, cpu_us: cpu.user + cpu.system, heap_bytes: mem.heapUsed + mem.arrayBuffers - Math.min(heap0, heapWithout), heap_used: mem.heapUsed, rss: mem.rss });
await client.release(identity).catch(() => {});
client.close();
process.exit(0);
