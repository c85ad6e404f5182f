import { resolve } from "node:path";
import { DEFAULT_STATE_DIR } from "./paths.js";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Splits argv into flags: `--name value`, `--name=value` and bare `--flag`. */
export function parseArgs(argv: string[], spec: { flags: string[]; values: string[] }): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument ${a}`);
    const name = m[1]!;
    if (spec.flags.includes(name)) {
      if (m[2] !== undefined) throw new UsageError(`--${name} takes no value`);
      out.set(name, true);
    } else if (spec.values.includes(name)) {
      const v = m[2] ?? argv[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`--${name} needs a value`);
      out.set(name, v);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return out;
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes)$/i.test(v);

export function portFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) throw new UsageError(`${name} must be a port number (1-65535), not "${raw}"`);
  return Number(raw);
}

/** The internal services' ports: variable, default. */
export const PORT_SETTINGS = {
  grpc: ["PONTE_GRPC_PORT", 50051],
  coordinatorMetrics: ["PONTE_COORDINATOR_METRICS_PORT", 9464],
  agentMetrics: ["PONTE_AGENT_METRICS_PORT", 9465],
  anvil: ["PONTE_ANVIL_PORT", 8545],
  postgres: ["PONTE_POSTGRES_PORT", 54329],
  nats: ["PONTE_NATS_PORT", 4223],
  starkbank: ["PONTE_STARKBANK_PORT", 8601],
  vault: ["PONTE_VAULT_PORT", 8200],
  litecoin: ["PONTE_LITECOIN_RPC_PORT", 19443],
  ltcAgentMetrics: ["PONTE_LTC_AGENT_METRICS_PORT", 9466],
} as const;
export type InternalPort = keyof typeof PORT_SETTINGS;

export interface StartOptions {
  fresh: boolean;
  stateDir: string;
  /** Internal services on kernel-picked ports (tests, or a machine where the defaults are taken). */
  freePorts: boolean;
  verbose: boolean;
  help: boolean;
  gatewayPort: number;
  gatewayHost: string;
  /** Ports given explicitly; the rest default (or are picked free with freePorts). */
  ports: Partial<Record<InternalPort, number>>;
}

export function parseStartOptions(argv: string[], env: NodeJS.ProcessEnv): StartOptions {
  const a = parseArgs(argv, { flags: ["fresh", "free-ports", "verbose", "help"], values: ["state-dir"] });
  const ports: Partial<Record<InternalPort, number>> = {};
  for (const [k, [name]] of Object.entries(PORT_SETTINGS) as [InternalPort, readonly [string, number]][]) {
    const p = portFrom(env, name);
    if (p !== undefined) ports[k] = p;
  }
  const stateDir = a.get("state-dir") ?? env.PONTE_STATE_DIR;
  return {
    fresh: a.has("fresh"),
    stateDir: typeof stateDir === "string" && stateDir !== "" ? resolve(stateDir) : DEFAULT_STATE_DIR,
    freePorts: a.has("free-ports") || truthy(env.PONTE_FREE_PORTS),
    verbose: a.has("verbose") || truthy(env.PONTE_VERBOSE),
    help: a.has("help"),
    gatewayPort: portFrom(env, "PORT") ?? 8080,
    gatewayHost: env.HOST && env.HOST !== "" ? env.HOST : "127.0.0.1",
    ports,
  };
}

export const START_USAGE = `Usage: npm start [-- options]      (or: node local/dist/start.js [options])

Starts a whole local Ponte and keeps it running until Ctrl-C.

Options:
  --fresh             wipe the state folder first (database, chains, keys, logs)
  --state-dir <dir>   where state lives (PONTE_STATE_DIR; default .ponte/ at the repo root)
  --free-ports        run the internal services on free ports (PONTE_FREE_PORTS=1)
  --verbose           show every log line of every process (PONTE_VERBOSE=1)
  --help              this text

Environment:
  PORT, HOST          the gateway's port (8080) and bind address (127.0.0.1)
  JWT_SECRET          HS256 key for the gateway (a development one is made otherwise)
  DATABASE_URL        use this PostgreSQL instead of the embedded one
  NATS_URL            use this NATS instead of a nats-server child
  PONTE_NATS_SERVER   the nats-server binary (default: from the PATH; a missing one runs without NATS)
  PONTE_LITECOIND     the litecoind binary (default /usr/lib/litecoin/litecoind; a missing one turns LTC off)
  ${Object.values(PORT_SETTINGS).map(([n, d]) => `${n}=${d}`).join("\n  ")}
  Coordinator settings (.env.example), e.g. STATIC_PRICES, PAYOUT_FAILURE_POLICY, LOG_LEVEL, pass through.
`;
