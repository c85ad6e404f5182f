import { freePort } from "@ponte/common/testing";
import { randomBytes } from "node:crypto";
import { profileArgs, startChild, type Child } from "../core/proc.js";
import { COORDINATOR_MAIN, GATEWAY_MAIN, LOCAL_ASSETS } from "./paths.js";

export const JWT_SECRET = "bench-secret-that-is-at-least-32-characters-long";
export const STATIC_PRICES = { ETH: "15000.00", USDT: "5.40", USDC: "5.40", DAI: "5.40", LTC: "400.00", SOL: "800.00" };

export interface RunningCoordinator {
  proc: Child;
  grpcTarget: string;
  stream: string;
  stop(): Promise<void>;
  /** Kills the process with `signal` and starts it again on the same port, stream and database. */
  restart(signal: NodeJS.Signals): Promise<RunningCoordinator>;
}

interface CoordinatorOptions {
  dbUrl: string;
  natsUrl: string;
  logDir: string;
  env?: Record<string, string>;
  /** Reused by restart(). */
  port?: number;
  suffix?: string;
}

/** The real coordinator (compiled main.js) on its own database and JetStream stream. */
export async function startCoordinator(o: CoordinatorOptions): Promise<RunningCoordinator> {
  const port = o.port ?? (await freePort());
  const suffix = o.suffix ?? randomBytes(4).toString("hex");
  const stream = `PONTE_BENCH_${suffix}`;
  const proc = await startChild({
    name: "coordinator",
    args: [...profileArgs(), COORDINATOR_MAIN],
    logDir: o.logDir,
    ready: "Coordinator ready",
    env: {
      DATABASE_URL: o.dbUrl,
      NATS_URL: o.natsUrl,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: `bench${suffix}.trade`,
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: String(port),
      METRICS_HOST: "127.0.0.1",
      METRICS_PORT: "0",
      ASSETS_FILE: LOCAL_ASSETS,
      PRICE_SOURCE: "static",
      STATIC_PRICES: JSON.stringify(STATIC_PRICES),
      PIX_PROVIDER: "none",
      LOG_LEVEL: "info",
      ...o.env,
    },
  });
  return {
    proc,
    grpcTarget: `127.0.0.1:${port}`,
    stream,
    async stop() {
      await proc.kill("SIGTERM");
    },
    async restart(signal) {
      await proc.kill(signal);
      return startCoordinator({ ...o, port, suffix });
    },
  };
}

export async function startGateway(o: { grpcTarget: string; logDir: string; env?: Record<string, string> }): Promise<{ proc: Child; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = await startChild({
    name: "gateway",
    args: [...profileArgs(), GATEWAY_MAIN],
    logDir: o.logDir,
    ready: "Gateway listening",
    env: { PORT: String(port), HOST: "127.0.0.1", COORDINATOR_GRPC_URL: o.grpcTarget, JWT_SECRET, LOG_LEVEL: "info", ...o.env },
  });
  return { proc, url: `http://127.0.0.1:${port}`, stop: async () => void (await proc.kill("SIGTERM")) };
}
