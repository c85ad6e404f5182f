// For other packages' tests only (@ponte/coordinator/testing): the real coordinator, in process.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createTestDatabase, testNatsUrl, type TestDatabase } from "@ponte/common/testing";
import { pino } from "pino";
import { startCoordinator, type Coordinator } from "../app.js";
import { loadConfig } from "../config.js";
import { createSql, type Sql } from "../db/index.js";
import { migrate, migrationsFingerprint } from "../db/migrate.js";

/**
 * The real coordinator for an agent's tests, in-process: its own database (cloned from the
 * migrated template), its own JetStream stream and subjects, its gRPC server on a fixed local
 * port. stop()/start() take it down and bring it back on the same database and port (the
 * coordinator unavailable); reset() also empties the tables, so a test starts from nothing.
 */
export interface TestCoordinator {
  /** host:port of the gRPC server; the same across restarts. */
  readonly address: string;
  readonly sql: Sql;
  /** The running coordinator's log lines, parsed (kept across restarts, emptied by reset). */
  readonly logs: Record<string, unknown>[];
  stop(): Promise<void>;
  /** Starts a coordinator on the same database and port; env overrides earlier settings. */
  start(env?: Record<string, string>): Promise<void>;
  restart(env?: Record<string, string>): Promise<void>;
  /** Stops, empties every table, starts again with env. */
  reset(env?: Record<string, string>): Promise<void>;
  /** ponte_coordinator_grpc_requests_total for a method (as labelled: "reportBlocks") and result code, since the last start. */
  grpcCalls(method: string, code?: string): Promise<number>;
  close(): Promise<void>;
}

const LOCAL_ASSETS = fileURLToPath(new URL("../../assets/local.json", import.meta.url));

/** `name` tells this package's streams and connections apart; `env` adds to or overrides the test settings. */
export async function startTestCoordinator(o: { name: string; env?: Record<string, string> }): Promise<TestCoordinator> {
  const db: TestDatabase = await createTestDatabase({ fingerprint: migrationsFingerprint(), migrate: (url) => migrate(url).then(() => undefined) });
  const sql = createSql(db.url, { max: 5, applicationName: `${o.name}-test` });
  const suffix = randomBytes(4).toString("hex");
  const base: Record<string, string> = {
    DATABASE_URL: db.url,
    NATS_URL: testNatsUrl(),
    NATS_STREAM: `PONTE_${o.name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_${suffix}`,
    NATS_SUBJECT_PREFIX: `${o.name.toLowerCase().replace(/[^a-z0-9]/g, "")}${suffix}.trade`,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    METRICS_PORT: "0",
    ASSETS_FILE: LOCAL_ASSETS,
    PRICE_SOURCE: "static",
    STATIC_PRICES: JSON.stringify({ ETH: "15000", USDT: "5.40", LTC: "400", SOL: "800" }),
    PIX_PROVIDER: "none",
    LEASE_TTL_MS: "1500",
    WATCH_POLL_MS: "200",
    EXPIRY_INTERVAL_MS: "200",
    OUTBOX_POLL_MS: "100",
    ...o.env,
  };
  const logs: Record<string, unknown>[] = [];
  const echo = !!process.env.PONTE_TEST_LOG;
  const logger = pino(
    { name: "coordinator", level: "info" },
    {
      write(line: string) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not JSON: nothing to assert on
        }
        if (echo) process.stderr.write(`[coordinator] ${line}`);
      },
    },
  );
  let port = 0;
  let current: Coordinator | undefined;

  const self: TestCoordinator = {
    get address() {
      return `127.0.0.1:${port}`;
    },
    sql,
    logs,
    async stop() {
      const c = current;
      current = undefined;
      await c?.stop();
    },
    async start(overrides = {}) {
      if (current) throw new Error("the test coordinator is running already");
      Object.assign(base, overrides);
      current = await startCoordinator(loadConfig({ ...base, GRPC_PORT: String(port) }), logger);
      port = current.grpcPort;
    },
    async restart(overrides) {
      await self.stop();
      await self.start(overrides);
    },
    async reset(overrides) {
      await self.stop();
      await sql`TRUNCATE quotes, instant_trades, instant_trade_history, deposit_addresses, deposits, chain_cursors, chain_blocks,
                         agent_leases, idempotency_keys, outbox, transfer_transactions, transfer_attempts, system_wallets,
                         system_wallet_balances, custodial_accounts CASCADE`;
      logs.length = 0;
      await self.start(overrides);
    },
    async grpcCalls(method, code = "OK") {
      if (!current) throw new Error("the test coordinator is not running");
      const text = await (await fetch(`http://127.0.0.1:${current.metricsPort}/metrics`)).text();
      let n = 0;
      for (const line of text.split("\n")) {
        if (line.startsWith("ponte_coordinator_grpc_requests_total{") && line.includes(`method="${method}"`) && line.includes(`code="${code}"`)) {
          n += Number(line.slice(line.lastIndexOf(" ") + 1));
        }
      }
      return n;
    },
    async close() {
      await self.stop();
      await sql.end({ timeout: 5 });
      await db.drop();
    },
  };
  await self.start();
  return self;
}
