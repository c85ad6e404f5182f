import autocannon from "autocannon";
import { freePort } from "@ponte/common/testing";
import { join } from "node:path";
import { cpuMeter } from "../core/cpu.js";
import { interleave } from "../core/interleave.js";
import { startChild } from "../core/proc.js";
import { compare, ge, le, type Benchmark, type Row } from "../core/result.js";
import { signJwt } from "../infra/jwt.js";
import { script } from "../infra/paths.js";
import { JWT_SECRET, startCoordinator, startGateway } from "../infra/ponte.js";
import { connect, freshDatabase } from "../infra/postgres.js";

interface Load {
  rps: number;
  p99: number;
  p50: number;
  total: number;
  non2xx: number;
  errors: number;
  cpuUs: number | null;
}

const ASSETS = "/api/v1/instant-trade/assets";
const QUOTE = "/api/v1/instant-trade/quote";
const QUOTE_BODY = JSON.stringify({ symbol: "ETH", network: "anvil", crypto_amount: "0.01" });

/**
 * B1 gateway overhead: the real gateway + real coordinator (JWT, validation, gRPC, price cache,
 * limits query, quote row) against bare Hono, 50 keep-alive connections from autocannon in this
 * process, 10 s per run, interleaved. CPU per request is the servers' (gateway + coordinator, or
 * the baseline process), read from /proc.
 */
export const b1: Benchmark = {
  id: "B1",
  title: "gateway overhead",
  async run(ctx) {
    const logDir = join(ctx.cacheDir, "logs");
    const durationS = ctx.smoke ? 1 : 10;
    const connections = ctx.smoke ? 10 : 50;
    const db = await freshDatabase();
    const coordinator = await startCoordinator({ dbUrl: db.url, natsUrl: ctx.natsUrl, logDir });
    const gateway = await startGateway({ grpcTarget: coordinator.grpcTarget, logDir });
    const port = await freePort();
    const hello = await startChild({ name: "b1-baseline", args: [script("b1/hello.js"), String(port), db.url], logDir, ready: "Baseline listening" });
    const baseUrl = `http://127.0.0.1:${port}`;
    // One token per simulated user, rotated per request (the same headers go to the baseline).
    const tokens = Array.from({ length: 50 }, (_, i) => signJwt(JWT_SECRET, { sub: `bench-user-${i}`, role: "user" }, 7200));
    let next = 0;

    const load = async (url: string, path: string, pids: number[], seconds: number): Promise<Load> => {
      const post = path === QUOTE;
      const meter = cpuMeter(pids);
      const r = await autocannon({
        url: url + path,
        connections,
        duration: seconds,
        pipelining: 1,
        requests: [
          {
            method: post ? "POST" : "GET",
            ...(post ? { body: QUOTE_BODY } : {}),
            setupRequest: (req) => ({
              ...req,
              headers: {
                ...(post ? { "content-type": "application/json" } : {}),
                authorization: `Bearer ${tokens[next++ % tokens.length]}`,
              },
            }),
          },
        ],
      });
      const cpu = meter.stop();
      const total = r.requests.total;
      return {
        rps: total / seconds,
        p99: r.latency.p99,
        p50: r.latency.p50,
        total,
        non2xx: r.non2xx,
        errors: r.errors + r.timeouts,
        cpuUs: cpu === null || total === 0 ? null : cpu / total,
      };
    };

    const ourPids = [gateway.proc.pid, coordinator.proc.pid];
    const rows: Row[] = [];
    try {
      for (const [label, path, target] of [
        ["assets", ASSETS, 0.7],
        ["quote", QUOTE, 0.8],
      ] as const) {
        const r = await interleave<Load>({
          reps: ctx.reps,
          label: `B1 ${label}`,
          log: ctx.log,
          warmup: ctx.smoke ? undefined : async () => {
            await load(gateway.url, path, ourPids, ctx.smoke ? 0.5 : 2);
            await load(baseUrl, path, [hello.pid], ctx.smoke ? 0.5 : 2);
          },
          ours: () => load(gateway.url, path, ourPids, durationS),
          baseline: () => load(baseUrl, path, [hello.pid], durationS),
        });
        const bad = [...r.ours, ...r.baseline].reduce((s, x) => s + x.non2xx + x.errors, 0);
        const cpu = {
          ours: median(r.ours.map((x) => x.cpuUs)),
          baseline: median(r.baseline.map((x) => x.cpuUs)),
          unit: "request",
        };
        const extra = {
          connections,
          duration_s: durationS,
          non2xx_or_errors: bad,
          p50_ms: { ours: r.ours.map((x) => x.p50), baseline: r.baseline.map((x) => x.p50) },
          requests: { ours: r.ours.map((x) => x.total), baseline: r.baseline.map((x) => x.total) },
        };
        rows.push(
          compare({
            bench: "B1",
            name: `B1 ${label} req/s`,
            unit: "req/s",
            mode: ctx.smoke ? "smoke" : "full",
            ours: r.ours.map((x) => x.rps),
            baseline: r.baseline.map((x) => x.rps),
            target: ge(target),
            cpu,
            extra,
            note: label === "quote" ? "baseline: bare Hono + the same single INSERT" : "baseline: bare Hono hello-world",
          }),
          compare({
            bench: "B1",
            name: `B1 ${label} p99`,
            unit: "ms",
            mode: ctx.smoke ? "smoke" : "full",
            ours: r.ours.map((x) => x.p99),
            baseline: r.baseline.map((x) => x.p99),
            target: label === "assets" ? le(2, "≤ 2×") : null,
            cpu,
          }),
        );
        if (bad > 0) ctx.log(`B1 ${label}: ${bad} non-2xx answers or errors`);
      }
      // The quote rows are real: count them as a check that the load did what it says.
      const sql = connect(db.url, 1);
      const [q] = await sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM quotes`;
      await sql.end();
      ctx.log(`B1: ${q?.n ?? 0n} quote rows written`);
    } finally {
      await hello.kill("SIGTERM");
      await gateway.stop();
      await coordinator.stop();
      await db.drop();
    }
    return rows;
  },
};

const median = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
