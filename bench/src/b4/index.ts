import { createCoordinatorClient, type AgentIdentity, type CoordinatorClient, type ProcessedBlock } from "@ponte/agent-runtime";
import { createLogger, newId } from "@ponte/common";
import { eventsv1 } from "@ponte/proto";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuMeter } from "../core/cpu.js";
import { interleave } from "../core/interleave.js";
import { compare, ge, type Benchmark, type Row } from "../core/result.js";
import { generateTrades, generatedAddresses, seedHistory, truncateAll } from "../infra/fixtures.js";
import { startCoordinator, type RunningCoordinator } from "../infra/ponte.js";
import { connect, freshDatabase, type Sql } from "../infra/postgres.js";

/** Concurrent reporting clients (one network each): 16, or 4 in smoke mode. */
let CLIENTS = 16;
const AMOUNT = 10_000_000_000_000_000n; // what each fixture trade expects: paid exactly
const sha = (s: string) => `0x${createHash("sha256").update(s).digest("hex")}`;

interface Work {
  network: string;
  trades: { address: string; tradeId: string }[];
}

interface RunResult {
  transitions: number;
  /** Transitions per second: all reports acknowledged and (ours) every event relayed to NATS. */
  rate: number;
  /** Ours: rate counting only until the last acknowledgement (the relay may still be sending). */
  ackRate: number;
  cpuUsPerTransition: number | null;
  ms: number;
}

/** 16 networks × their share of the trades, fresh for each run. */
async function prepare(sql: Sql, total: number, runTag: string): Promise<Work[]> {
  await truncateAll(sql);
  const per = Math.floor(total / CLIENTS);
  const work: Work[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const network = `bench-b4-${String(c + 1).padStart(2, "0")}`;
    const tag = (parseInt(runTag, 16) ^ c).toString(16).padStart(4, "0").slice(-4);
    await generateTrades(sql, { network, count: per, tag, amount: AMOUNT });
    work.push({ network, trades: await generatedAddresses(sql, network, tag) });
    // As many settled trades as the run adds, so the statistics describe a running desk.
    const historyTag = (parseInt(tag, 16) ^ 0x8000).toString(16).padStart(4, "0");
    await seedHistory(sql, { network, count: per, tag: historyTag, firstIndex: per + 1 });
  }
  await sql`ANALYZE`;
  return work;
}

/** The synthetic chain of one network: block k (1-based) carries the deposits given. */
const blockOf = (network: string, height: number, trades: { address: string }[]): ProcessedBlock => ({
  height: BigInt(height),
  hash: sha(`${network}:block:${height}`),
  parentHash: sha(`${network}:block:${height - 1}`),
  time: BigInt(Math.floor(Date.now() / 1000)),
  deposits: trades.map((t) => {
    const txHash = sha(`${network}:tx:${t.address}`);
    return { txRef: `${txHash}:native`, txHash, address: t.address, contract: null, amount: AMOUNT, from: "0x000000000000000000000000000000000000dEaD" };
  }),
});

async function waitRelayed(sql: Sql, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM outbox WHERE sent_at IS NULL`;
    if (r && r.n === 0n) return;
    if (Date.now() > deadline) throw new Error(`the outbox still has ${r?.n} unsent events`);
    await sleep(20);
  }
}

async function checkDone(sql: Sql, trades: number): Promise<number> {
  const [h] = await sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM instant_trade_history WHERE from_status IS NOT NULL`;
  const [t] = await sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM instant_trades WHERE status = 'PAYMENT_CONFIRMED'`;
  if (Number(t?.n) !== trades) throw new Error(`${t?.n} of ${trades} trades reached PAYMENT_CONFIRMED`);
  return Number(h?.n ?? 0);
}

/** Ours: every client holds its network's lease and reports blocks over the real gRPC API. */
async function runOurs(o: { sql: Sql; coordinator: RunningCoordinator; total: number; perCall: number; runTag: string }): Promise<RunResult> {
  const work = await prepare(o.sql, o.total, o.runTag);
  const logger = createLogger({ name: "bench-b4", level: "silent" });
  const clients: CoordinatorClient[] = work.map(() => createCoordinatorClient({ address: o.coordinator.grpcTarget, logger, deadlineMs: 120_000 }));
  const ids: AgentIdentity[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const id: AgentIdentity = { network: work[c]!.network, agentId: `bench-b4-${c}`, leaseEpoch: 0n };
    const g = await clients[c]!.register(id, { family: "evm", chainId: "31337", version: "bench" });
    if (!g.granted) throw new Error(`no lease for ${id.network}`);
    ids.push({ ...id, leaseEpoch: g.epoch });
  }
  const meter = cpuMeter([o.coordinator.proc.pid]);
  const t0 = performance.now();
  await Promise.all(
    work.map(async (w, c) => {
      let height = 0;
      for (let i = 0; i < w.trades.length; i += o.perCall) {
        const b = blockOf(w.network, ++height, w.trades.slice(i, i + o.perCall));
        // Deposits already final when reported (a catch-up): each trade makes two transitions,
        // PENDING → DEPOSIT_DETECTED → PAYMENT_CONFIRMED, in the reporting transaction.
        await clients[c]!.reportBlocks(ids[c]!, { blocks: [b], head: { height: b.height, hash: b.hash }, finalizedHeight: b.height });
      }
    }),
  );
  const tAck = performance.now();
  await waitRelayed(o.sql, 300_000);
  const tRelayed = performance.now();
  const cpu = meter.stop();
  for (const c of clients) c.close();
  const transitions = await checkDone(o.sql, work.reduce((s, w) => s + w.trades.length, 0));
  return {
    transitions,
    rate: transitions / ((tRelayed - t0) / 1000),
    ackRate: transitions / ((tAck - t0) / 1000),
    cpuUsPerTransition: cpu === null ? null : cpu / transitions,
    ms: tRelayed - t0,
  };
}

const SUBJECT = "bench.trade";
const eventPayload = (tradeId: string, from: string, to: string, version: bigint, network: string, address: string) =>
  Buffer.from(
    eventsv1.TradeEvent.encode({
      eventId: newId("event"),
      tradeId,
      userId: "bench-user",
      network,
      symbol: "ETH",
      fromStatus: from,
      toStatus: to,
      version,
      actor: `agent:${network}`,
      reason: to === "DEPOSIT_DETECTED" ? "deposit seen" : "deposit final",
      occurredAt: new Date().toISOString(),
      cryptoAmount: AMOUNT.toString(),
      fiatAmountCentavos: "14512",
      depositAddress: address,
      data: {},
    }).finish(),
  );

/**
 * Baseline, per trade: the same writes as one report of one deposit, by hand, one transaction:
 * lease check, cursor lock, block row, deposit row, two guarded transitions each with its history
 * row, outbox row and NOTIFY, the cursor update. 16 connections, one per "client".
 */
async function runRawLoop(o: { sql: Sql; total: number; runTag: string }): Promise<RunResult> {
  const work = await prepare(o.sql, o.total, o.runTag);
  for (const w of work) {
    await o.sql`INSERT INTO agent_leases (network, holder, epoch, expires_at) VALUES (${w.network}, 'bench', 1, now() + interval '1 hour')`;
  }
  const meter = cpuMeter([], true);
  const t0 = performance.now();
  await Promise.all(
    work.map(async (w) => {
      let height = 0;
      for (const t of w.trades) {
        const b = blockOf(w.network, ++height, [t]);
        const d = b.deposits[0]!;
        await o.sql.begin(async (tx) => {
          const [l] = await tx<{ ok: boolean }[]>`SELECT holder = 'bench' AND epoch = 1 AND expires_at > now() AS ok FROM agent_leases WHERE network = ${w.network} FOR UPDATE`;
          if (!l?.ok) throw new Error("lease");
          await tx`SELECT height, hash FROM chain_cursors WHERE network = ${w.network} FOR UPDATE`;
          await tx`INSERT INTO chain_blocks (network, height, hash, parent_hash) VALUES (${w.network}, ${height}, ${b.hash}, ${b.parentHash})`;
          await tx`INSERT INTO deposits (network, tx_ref, tx_hash, address, contract, amount, trade_id, status, block_height, block_hash, from_address)
                   VALUES (${w.network}, ${d.txRef}, ${d.txHash}, ${d.address}, '', ${AMOUNT.toString()}, ${t.tradeId}, 'CONFIRMED', ${height}, ${b.hash}, ${d.from})`;
          for (const [from, to, set] of [
            ["PENDING", "DEPOSIT_DETECTED", "received"],
            ["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "confirmed"],
          ] as const) {
            const [r] = await tx<{ version: bigint }[]>`
              UPDATE instant_trades SET status = ${to}, version = version + 1, updated_at = now(),
                     ${set === "received" ? tx`received_amount` : tx`confirmed_amount`} = ${AMOUNT.toString()}
               WHERE id = ${t.tradeId} AND status = ${from} RETURNING version`;
            if (!r) throw new Error("stale");
            await tx`INSERT INTO instant_trade_history (trade_id, version, from_status, to_status, actor, reason, data)
                     VALUES (${t.tradeId}, ${r.version.toString()}, ${from}, ${to}, ${`agent:${w.network}`}, 'deposit', '{}')`;
            await tx`INSERT INTO outbox (event_id, trade_id, subject, payload)
                     VALUES (${newId("event")}, ${t.tradeId}, ${SUBJECT}, ${eventPayload(t.tradeId, from, to, r.version, w.network, t.address)})`;
            await tx`SELECT pg_notify('ponte_outbox', '')`;
          }
          await tx`INSERT INTO chain_cursors (network, height, hash, finalized_height, head_height)
                   VALUES (${w.network}, ${height}, ${b.hash}, ${height}, ${height})
                   ON CONFLICT (network) DO UPDATE SET height = EXCLUDED.height, hash = EXCLUDED.hash,
                     finalized_height = EXCLUDED.finalized_height, head_height = EXCLUDED.head_height, updated_at = now()`;
        });
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = meter.stop();
  const transitions = await checkDone(o.sql, work.reduce((s, w) => s + w.trades.length, 0));
  const rate = transitions / (ms / 1000);
  return { transitions, rate, ackRate: rate, cpuUsPerTransition: cpu === null ? null : cpu / transitions, ms };
}

/** Baseline, batched: the same writes for `perCall` deposits in one transaction with unnest. */
async function runRawUnnest(o: { sql: Sql; total: number; perCall: number; runTag: string }): Promise<RunResult> {
  const work = await prepare(o.sql, o.total, o.runTag);
  for (const w of work) {
    await o.sql`INSERT INTO agent_leases (network, holder, epoch, expires_at) VALUES (${w.network}, 'bench', 1, now() + interval '1 hour')`;
  }
  const meter = cpuMeter([], true);
  const t0 = performance.now();
  await Promise.all(
    work.map(async (w) => {
      let height = 0;
      for (let i = 0; i < w.trades.length; i += o.perCall) {
        const part = w.trades.slice(i, i + o.perCall);
        const b = blockOf(w.network, ++height, part);
        const tradeIds = part.map((t) => t.tradeId);
        await o.sql.begin(async (tx) => {
          const [l] = await tx<{ ok: boolean }[]>`SELECT holder = 'bench' AND epoch = 1 AND expires_at > now() AS ok FROM agent_leases WHERE network = ${w.network} FOR UPDATE`;
          if (!l?.ok) throw new Error("lease");
          await tx`SELECT height, hash FROM chain_cursors WHERE network = ${w.network} FOR UPDATE`;
          await tx`INSERT INTO chain_blocks (network, height, hash, parent_hash) VALUES (${w.network}, ${height}, ${b.hash}, ${b.parentHash})`;
          await tx`INSERT INTO deposits (network, tx_ref, tx_hash, address, contract, amount, trade_id, status, block_height, block_hash, from_address)
                   SELECT ${w.network}, x.ref, x.hash, x.addr, '', ${AMOUNT.toString()}, x.tid, 'CONFIRMED', ${height}, ${b.hash}, ${b.deposits[0]!.from}
                     FROM unnest(${b.deposits.map((d) => d.txRef)}::text[], ${b.deposits.map((d) => d.txHash)}::text[],
                                 ${part.map((t) => t.address)}::text[], ${tradeIds}::text[]) AS x(ref, hash, addr, tid)`;
          for (const [from, to, set] of [
            ["PENDING", "DEPOSIT_DETECTED", "received"],
            ["DEPOSIT_DETECTED", "PAYMENT_CONFIRMED", "confirmed"],
          ] as const) {
            const rows = await tx<{ id: string; version: bigint; deposit_address: string }[]>`
              UPDATE instant_trades t SET status = ${to}, version = t.version + 1, updated_at = now(),
                     ${set === "received" ? tx`received_amount` : tx`confirmed_amount`} = ${AMOUNT.toString()}
                FROM unnest(${tradeIds}::text[]) AS x(id)
               WHERE t.id = x.id AND t.status = ${from} RETURNING t.id, t.version, t.deposit_address`;
            if (rows.length !== part.length) throw new Error("stale");
            await tx`INSERT INTO instant_trade_history (trade_id, version, from_status, to_status, actor, reason, data)
                     SELECT x.id, x.v::bigint, ${from}, ${to}, ${`agent:${w.network}`}, 'deposit', '{}'
                       FROM unnest(${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.version.toString())}::text[]) AS x(id, v)`;
            const payloads = rows.map((r) => eventPayload(r.id, from, to, r.version, w.network, r.deposit_address).toString("hex"));
            await tx`INSERT INTO outbox (event_id, trade_id, subject, payload)
                     SELECT x.e, x.id, ${SUBJECT}, decode(x.p, 'hex')
                       FROM unnest(${rows.map(() => newId("event"))}::text[], ${rows.map((r) => r.id)}::text[], ${payloads}::text[]) AS x(e, id, p)`;
            await tx`SELECT pg_notify('ponte_outbox', '')`;
          }
          await tx`INSERT INTO chain_cursors (network, height, hash, finalized_height, head_height)
                   VALUES (${w.network}, ${height}, ${b.hash}, ${height}, ${height})
                   ON CONFLICT (network) DO UPDATE SET height = EXCLUDED.height, hash = EXCLUDED.hash,
                     finalized_height = EXCLUDED.finalized_height, head_height = EXCLUDED.head_height, updated_at = now()`;
        });
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = meter.stop();
  const transitions = await checkDone(o.sql, work.reduce((s, w) => s + w.trades.length, 0));
  const rate = transitions / (ms / 1000);
  return { transitions, rate, ackRate: rate, cpuUsPerTransition: cpu === null ? null : cpu / transitions, ms };
}

/**
 * B4 coordinator throughput: deposits reported over gRPC by 16 concurrent clients (one network
 * and lease each) through the real coordinator (guarded transitions + history + outbox, relayed
 * to NATS), per trade and batched 100 per call, against raw `postgres` doing the same writes at
 * the same concurrency. Ours and the baseline use separate databases (so the coordinator's relay
 * never publishes the baseline's rows); both are emptied and refilled before every run.
 */
export const b4: Benchmark = {
  id: "B4",
  title: "coordinator throughput",
  async run(ctx) {
    const logDir = join(ctx.cacheDir, "logs");
    CLIENTS = ctx.smoke ? 4 : 16;
    // 20k trades per side: each of the three interleaved runs processes a third of them.
    const total = ctx.smoke ? CLIENTS * 10 : Math.ceil(20_000 / ctx.reps / CLIENTS) * CLIENTS;
    const batch = ctx.smoke ? 5 : 100;
    const mode = ctx.smoke ? "smoke" : "full";
    const oursDb = await freshDatabase();
    const baseDb = await freshDatabase();
    const oursSql = connect(oursDb.url, 2);
    const baseSql = connect(baseDb.url, CLIENTS);
    const coordinator = await startCoordinator({
      dbUrl: oursDb.url,
      natsUrl: ctx.natsUrl,
      logDir,
      // The same database concurrency as the baseline's 16 connections; leases outlive the run.
      env: { DATABASE_POOL_SIZE: String(CLIENTS), LEASE_TTL_MS: "600000" },
    });
    const tag = () => randomBytes(2).toString("hex");
    const rows: Row[] = [];
    try {
      const warm = Math.max(CLIENTS * 10, Math.floor(total / 20));
      for (const [label, perCall, target] of [
        ["per trade", 1, 0.6],
        ["batched", batch, 0.5],
      ] as const) {
        const r = await interleave<RunResult>({
          reps: ctx.reps,
          label: `B4 ${label}`,
          log: ctx.log,
          warmup: ctx.smoke ? undefined : async () => {
            await runOurs({ sql: oursSql, coordinator, total: warm, perCall, runTag: tag() });
            await (perCall === 1 ? runRawLoop({ sql: baseSql, total: warm, runTag: tag() }) : runRawUnnest({ sql: baseSql, total: warm, perCall, runTag: tag() }));
          },
          ours: () => runOurs({ sql: oursSql, coordinator, total, perCall, runTag: tag() }),
          baseline: () => (perCall === 1 ? runRawLoop({ sql: baseSql, total, runTag: tag() }) : runRawUnnest({ sql: baseSql, total, perCall, runTag: tag() })),
        });
        rows.push(
          compare({
            bench: "B4",
            name: `B4 ${label} transitions/s`,
            unit: "tr/s",
            mode,
            ours: r.ours.map((x) => x.rate),
            baseline: r.baseline.map((x) => x.rate),
            target: ge(target),
            cpu: {
              ours: med(r.ours.map((x) => x.cpuUsPerTransition)),
              baseline: med(r.baseline.map((x) => x.cpuUsPerTransition)),
              unit: "transition",
            },
            note:
              perCall === 1
                ? `ours: ${CLIENTS} gRPC clients, 1 deposit per ReportBlocks, until every event is on NATS; baseline: raw postgres loop, ${CLIENTS} connections`
                : `ours: ${CLIENTS} gRPC clients, ${perCall} deposits per ReportBlocks, until every event is on NATS; baseline: raw unnest batch of ${perCall}, ${CLIENTS} connections`,
            extra: {
              trades_per_run: total,
              clients: CLIENTS,
              transitions_per_trade: 2,
              ours_ack_only_rate: r.ours.map((x) => Math.round(x.ackRate)),
              ours_ms: r.ours.map((x) => Math.round(x.ms)),
              baseline_ms: r.baseline.map((x) => Math.round(x.ms)),
            },
          }),
        );
      }
    } finally {
      await coordinator.stop();
      await oursSql.end();
      await baseSql.end();
      await oursDb.drop();
      await baseDb.drop();
    }
    return rows;
  },
};

const med = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return v.length ? v[v.length >> 1]! : null;
};
