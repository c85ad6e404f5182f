import { credentials } from "@grpc/grpc-js";
import { createTestDatabase, freePort, startProcess, testNatsUrl, type RunningProcess } from "@ponte/common/testing";
import { createSql, migrate, migrationsFingerprint, type Sql } from "@ponte/coordinator";
import { agentv1 } from "@ponte/proto";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { signJwt } from "./jwt.js";

const entry = (pkg: string) => fileURLToPath(import.meta.resolve(`@ponte/${pkg}`)).replace(/index\.js$/, "main.js");
const LOCAL_ASSETS = fileURLToPath(new URL("../../../coordinator/assets/local.json", import.meta.url));

export const JWT_SECRET = "test-secret-that-is-at-least-32-characters-long";
export const STATIC_PRICES = { ETH: "15000.00", USDT: "5.40", LTC: "400.00", SOL: "800.00" };

export interface Stack {
  sql: Sql;
  dbUrl: string;
  gatewayUrl: string;
  grpcTarget: string;
  natsUrl: string;
  stream: string;
  subjectPrefix: string;
  coordinator: RunningProcess;
  gateway: RunningProcess;
  coordinatorEnv: Record<string, string>;
  token(sub: string, claims?: Record<string, unknown>): string;
  adminToken(sub?: string): string;
  api(path: string, init?: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  restartCoordinator(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real Ponte for one test file: its own database (cloned from the migrated template), its own
 * JetStream stream and subjects, the coordinator and the gateway as child processes.
 */
export async function startStack(opts: { env?: Record<string, string>; gatewayEnv?: Record<string, string>; natsUrl?: string } = {}): Promise<Stack> {
  const db = await createTestDatabase({ fingerprint: migrationsFingerprint(), migrate: (url) => migrate(url).then(() => undefined) });
  const sql = createSql(db.url, { max: 5, applicationName: "ponte-test" });
  const suffix = randomBytes(4).toString("hex");
  const grpcPort = await freePort();
  const natsUrl = opts.natsUrl ?? testNatsUrl();
  const stream = `PONTE_TEST_${suffix}`;
  const subjectPrefix = `test${suffix}.trade`;
  const coordinatorEnv: Record<string, string> = {
    DATABASE_URL: db.url,
    NATS_URL: natsUrl,
    NATS_STREAM: stream,
    NATS_SUBJECT_PREFIX: subjectPrefix,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: String(grpcPort),
    METRICS_HOST: "127.0.0.1",
    METRICS_PORT: "0",
    ASSETS_FILE: LOCAL_ASSETS,
    PRICE_SOURCE: "static",
    STATIC_PRICES: JSON.stringify(STATIC_PRICES),
    OUTBOX_POLL_MS: "100",
    EXPIRY_INTERVAL_MS: "200",
    WATCH_POLL_MS: "200",
    LEASE_TTL_MS: "3000",
    PIX_PROVIDER: "none",
    LOG_LEVEL: "info",
    ...opts.env,
  };
  const startCoordinator = () =>
    startProcess({ name: "coordinator", entry: entry("coordinator"), env: coordinatorEnv, readyLog: "Coordinator ready" });
  let coordinator = await startCoordinator();
  const gatewayPort = await freePort();
  const gateway = await startProcess({
    name: "gateway",
    entry: entry("gateway"),
    env: {
      PORT: String(gatewayPort),
      HOST: "127.0.0.1",
      COORDINATOR_GRPC_URL: `127.0.0.1:${grpcPort}`,
      JWT_SECRET,
      LOG_LEVEL: "info",
      ...opts.gatewayEnv,
    },
    readyLog: "Gateway listening",
  });
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const stack: Stack = {
    sql,
    dbUrl: db.url,
    gatewayUrl,
    grpcTarget: `127.0.0.1:${grpcPort}`,
    natsUrl,
    stream,
    subjectPrefix,
    get coordinator() {
      return coordinator;
    },
    gateway,
    coordinatorEnv,
    token: (sub, claims = {}) => signJwt(JWT_SECRET, { sub, role: "user", ...claims }),
    adminToken: (sub = "admin-1") => signJwt(JWT_SECRET, { sub, role: "admin" }),
    async api(path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      if (init.token) headers.authorization = `Bearer ${init.token}`;
      let body: string | undefined;
      if (init.body !== undefined) {
        headers["content-type"] ??= "application/json";
        body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
      }
      const res = await fetch(`${gatewayUrl}${path}`, { method: init.method ?? (body ? "POST" : "GET"), headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      return { status: res.status, body: parsed };
    },
    async restartCoordinator(signal = "SIGKILL") {
      await coordinator.kill(signal);
      coordinator = await startCoordinator();
    },
    async stop() {
      await gateway.kill("SIGTERM");
      await coordinator.kill("SIGTERM");
      await sql.end({ timeout: 5 });
      await db.drop();
    },
  };
  return stack;
}

/** Registers as the network's agent over the real AgentService and stocks its address pool. */
export async function stockAddressPool(stack: Stack, network: string, addresses: string[]): Promise<void> {
  const client = new agentv1.AgentServiceClient(stack.grpcTarget, credentials.createInsecure());
  const call = <Req, Res>(fn: (req: Req, cb: (err: Error | null, res: Res) => void) => void, req: Req) =>
    new Promise<Res>((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
  try {
    const agentId = `test-stocker-${randomBytes(3).toString("hex")}`;
    const reg = await call<agentv1.RegisterRequest, agentv1.RegisterResponse>(client.register, {
      identity: { network, agentId, leaseEpoch: 0n },
      family: agentv1.ChainFamily.CHAIN_FAMILY_EVM,
      chainId: "31337",
      version: "test",
      systemWallets: [],
    });
    if (!reg.granted) throw new Error(`lease for ${network} is held by ${reg.holderAgentId}`);
    const identity = { network, agentId, leaseEpoch: reg.leaseEpoch };
    const pool = await call<agentv1.GetAddressPoolRequest, agentv1.AddressPoolStatus>(client.getAddressPool, { identity });
    const start = Number(pool.nextIndex < 0n ? 0n : pool.nextIndex);
    await call<agentv1.AddDepositAddressesRequest, agentv1.AddressPoolStatus>(client.addDepositAddresses, {
      identity,
      addresses: addresses.map((address, i) => ({
        address,
        derivationIndex: start + i,
        derivationPath: `m/44'/60'/0'/0/${start + i}`,
        script: "",
      })),
    });
    await call<agentv1.ReleaseRequest, agentv1.ReleaseResponse>(client.release, { identity });
  } finally {
    client.close();
  }
}

/** Distinct valid EVM addresses (lowercase hex). */
export const evmAddresses = (n: number): string[] =>
  Array.from({ length: n }, () => `0x${randomBytes(20).toString("hex")}`);
